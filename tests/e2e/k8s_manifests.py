#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks contrib/kubernetes/ and prints the vmunion command lines it runs.

Usage: k8s_manifests.py DIR

The manifests must hold what docs/scale-down.md asks for:
- the preview Pod: vmunionfs privileged (for /dev/fuse), as a native sidecar
  whose startupProbe waits for the mount; the retiring PVCs read-only (in the
  volume and in every mount); the upper on an emptyDir; the mount shared
  with the vmstorage container through an emptyDir (Bidirectional then
  HostToContainer propagation), and vmstorage's -storageDataPath on it;
- the commit Jobs: the retiring PVCs read-only, the surviving PVC writable
  and given to `materialize --into`; the verify Job only the retiring ones;
- the Containerfile: Debian bookworm-slim, built from the release tarball,
  with the -dev package of every library configure.ac asks for.

Prints one JSON object: {"commands": [{"role": ..., "argv": [...],
"mounts": {path: claim}}]} with every vmunion/vmunionfs command found
(shell scripts split on && ; and newlines), for the e2e test to run.
Exit status 1 with the failed checks on standard error.
"""

import json
import os
import re
import shlex
import sys

import yaml

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def commands_of(container):
    """vmunion/vmunionfs argv lists of a container (exec form or sh -c)."""
    argv = list(container.get("command", [])) + list(container.get("args", []))
    if argv[:2] == ["/bin/sh", "-c"]:
        out = []
        for part in re.split(r"&&|;|\n", argv[2]):
            words = shlex.split(part)
            if words[:1] == ["exec"]:
                words = words[1:]
            if words[:1] in (["vmunion"], ["vmunionfs"]):
                out.append(words)
        return out
    return [argv] if argv[:1] in (["vmunion"], ["vmunionfs"]) else []


def pod_spec(doc):
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def claims(spec):
    """volume name -> (claim name, readOnly) for PVC volumes."""
    out = {}
    for v in spec.get("volumes", []):
        pvc = v.get("persistentVolumeClaim")
        if pvc:
            out[v["name"]] = (pvc["claimName"], bool(pvc.get("readOnly")))
    return out


def mounts(container, spec):
    """mountPath -> claim name of the PVC mounts of a container."""
    pvcs = claims(spec)
    return {m["mountPath"]: pvcs[m["name"]][0]
            for m in container.get("volumeMounts", []) if m["name"] in pvcs}


def main():
    top = sys.argv[1]
    docs = []
    for name in sorted(os.listdir(top)):
        if name.endswith(".yaml"):
            with open(os.path.join(top, name)) as f:
                docs += [(name, d) for d in yaml.safe_load_all(f) if d]
    found = []
    for name, doc in docs:
        spec = pod_spec(doc)
        pvcs = claims(spec)
        containers = spec.get("initContainers", []) + spec.get("containers", [])
        for c in containers:
            for argv in commands_of(c):
                role = argv[0] if argv[0] == "vmunionfs" else "vmunion " + argv[1]
                if argv[:3] == ["vmunion", "verify", "--live"]:
                    role += " --live"
                found.append({"file": name, "object": doc["metadata"]["name"], "role": role,
                              "argv": argv, "mounts": mounts(c, spec)})
                if role == "vmunion materialize":
                    check(argv[2] == "--into", "%s: materialize --into" % name)
                    into = argv[3]
                    for m in c["volumeMounts"]:
                        ro = bool(m.get("readOnly"))
                        check(ro == (m["mountPath"] != into),
                              "%s: only the surviving volume %s is writable (%s)"
                              % (name, into, m["mountPath"]))
                        check(pvcs[m["name"]][1] == ro,
                              "%s: PVC readOnly matches the mount of %s" % (name, m["mountPath"]))
                else:
                    for m in c.get("volumeMounts", []):
                        if m["name"] in pvcs:
                            check(m.get("readOnly") and pvcs[m["name"]][1],
                                  "%s: %s: the retiring PVC %s is read-only"
                                  % (name, c["name"], pvcs[m["name"]][0]))
        if doc["kind"] == "Pod":
            check_preview(name, spec)
    roles = {f["role"] for f in found}
    for role in ("vmunionfs", "vmunion verify --live", "vmunion materialize"):
        check(role in roles, "a %s command" % role)
    check_containerfile(top)
    if failures:
        for f in failures:
            print("k8s_manifests: " + f, file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"commands": found}, indent=1))


def check_preview(name, spec):
    sidecars = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    fuse = [c for c in sidecars if any(a[0] == "vmunionfs" for a in commands_of(c))]
    if not check(len(fuse) == 1, "%s: vmunionfs is a native sidecar" % name):
        return
    fuse = fuse[0]
    argv = [a for a in commands_of(fuse) if a[0] == "vmunionfs"][0]
    mnt = argv[-1]
    check(fuse.get("securityContext", {}).get("privileged") is True,
          "%s: vmunionfs is privileged (/dev/fuse, mount propagation)" % name)
    probe = fuse.get("startupProbe", {}).get("exec", {}).get("command", [])
    check(probe == ["mountpoint", "-q", mnt], "%s: the startupProbe waits for %s" % (name, mnt))
    empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    by_path = {m["mountPath"]: m for m in fuse["volumeMounts"]}
    upper = [o.split("=", 1)[1] for o in argv if o.startswith("upper=")]
    check(len(upper) == 1 and any(upper[0].startswith(p + "/") and by_path[p]["name"] in empty
                                  for p in by_path), "%s: the upper is on an emptyDir" % name)
    shared = [m for p, m in by_path.items() if mnt.startswith(p + "/")]
    check(len(shared) == 1 and shared[0]["name"] in empty and
          shared[0].get("mountPropagation") == "Bidirectional",
          "%s: the mount is under an emptyDir with Bidirectional propagation" % name)
    storage = [c for c in spec["containers"] if c["name"] == "vmstorage"]
    if check(len(storage) == 1 and shared, "%s: a vmstorage container" % name):
        s = storage[0]
        check("-storageDataPath=" + mnt in s.get("args", []),
              "%s: vmstorage runs on the mount %s" % (name, mnt))
        check(any(m["name"] == shared[0]["name"] and
                  m.get("mountPropagation") == "HostToContainer" for m in s["volumeMounts"]),
              "%s: vmstorage sees the mount (HostToContainer)" % name)


def check_containerfile(top):
    with open(os.path.join(top, "Containerfile")) as f:
        text = f.read()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    check(froms and all(f == "debian:bookworm-slim" for f in froms),
          "Containerfile: every stage FROM debian:bookworm-slim")
    check(re.search(r"COPY vmunionfs-\$\{VERSION\}\.tar\.gz", text) and
          "./configure" in text, "Containerfile: built from the release tarball")
    with open(os.path.join(top, "..", "..", "configure.ac")) as f:
        configure = f.read()
    for dev in re.findall(r"Debian package (\S+?-dev)", configure):
        check(dev in text, "Containerfile: installs %s (configure.ac needs it)" % dev)


if __name__ == "__main__":
    main()
