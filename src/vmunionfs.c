/* SPDX-License-Identifier: Apache-2.0 */
/* vmunionfs: mount several vmstorage volumes as one merged vmstorage tree. */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "fs.h"
#include "fs_plan.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "passthrough.h"
#include "readahead.h"
#include "upper.h"
#include "util.h"
#include "volume.h"

#define EXIT_REFUSED 1
#define EXIT_FAILURE_IO 2
#define EXIT_USAGE 64

struct options {
	char *upper;
	char *metrics;  /* -o metrics=ADDRESS */
	double timeout;
	char *readahead;
	unsigned int readahead_kib; /* 0: the kernel's */
	int nocheck; /* -o nocheck: skip the metricID collision scan */
	int nopassthrough; /* -o nopassthrough */
	bool help, version;
	bool fsname, subtype; /* given by the user: theirs win */
	struct name_list positional;
};

enum { KEY_HELP, KEY_VERSION, KEY_FSNAME, KEY_SUBTYPE, KEY_IGNORED };

static const struct fuse_opt option_specs[] = {
	{ "upper=%s", offsetof(struct options, upper), 0 },
	{ "timeout=%lf", offsetof(struct options, timeout), 0 },
	{ "readahead=%s", offsetof(struct options, readahead), 0 },
	{ "nocheck", offsetof(struct options, nocheck), 1 },
	{ "nopassthrough", offsetof(struct options, nopassthrough), 1 },
	{ "metrics=%s", offsetof(struct options, metrics), 0 },
	FUSE_OPT_KEY("fsname=", KEY_FSNAME),
	FUSE_OPT_KEY("subtype=", KEY_SUBTYPE),
	FUSE_OPT_KEY("suid", KEY_IGNORED),
	FUSE_OPT_KEY("dev", KEY_IGNORED),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END,
};

static void usage(FILE *out)
{
	fputs("Usage: vmunionfs [OPTIONS] VOLUME[:VOLUME...] [VOLUME...] MOUNTPOINT\n"
	      "\n"
	      "Presents several VictoriaMetrics vmstorage volumes, opened read-only, as one\n"
	      "merged vmstorage tree at MOUNTPOINT. Without -o upper the mount is read-only\n"
	      "and served from memory, with the volumes' own permissions.\n"
	      "\n"
	      "Options:\n"
	      "  -o upper=DIR     writable copy-on-write layer: every change lands in DIR,\n"
	      "                   the volumes are never written (a vmstorage can run on it)\n"
	      "  -o timeout=SECS  kernel attribute/entry cache timeout (default 86400:\n"
	      "                   every change goes through the mount, so the kernel's\n"
	      "                   cache stays right; never change the upper while mounted)\n"
	      "  -o readahead=KIB how far the kernel reads ahead of sequential reads,\n"
	      "                   0 to 1048576 (default 1024: one request through the\n"
	      "                   daemon per MiB; 0: the kernel's 128; needs root)\n"
	      "  -o nocheck       skip the metricID collision scan of the indexdb before\n"
	      "                   mounting (the cheap checks of `vmunion check` always run)\n"
	      "  -o nopassthrough read (and write) every file through the daemon, not by\n"
	      "                   the kernel itself once open (FUSE passthrough, the\n"
	      "                   default where -V says built: libfuse >= 3.17, Linux\n"
	      "                   >= 6.9, CAP_SYS_ADMIN; the log says if it is on)\n"
	      "  -o metrics=[ADDRESS:]PORT\n"
	      "                   serve Prometheus metrics on http://ADDRESS:PORT/metrics\n"
	      "                   (loopback only; ADDRESS defaults to 127.0.0.1)\n"
	      "  -o fsname=NAME   the source findmnt and df show (default: the volumes)\n"
	      "  -o subtype=TYPE  the type is fuse.TYPE (default: vmunionfs)\n"
	      "  -o OPT[,OPT...]  FUSE mount options (allow_other, default_permissions,\n"
	      "                   max_threads=N, ...: see vmunionfs(1)); always\n"
	      "                   nosuid,nodev: suid and dev are ignored\n"
	      "  -f               stay in the foreground; log to stderr (else syslog)\n"
	      "  -d               also log FUSE's request trace (implies -f)\n"
	      "  -s               single-threaded\n"
	      "  -h, --help       show this help\n"
	      "  -V, --version    show the version\n"
	      "\n"
	      "SIGUSR1 writes the counters to the log.\n"
	      "\n"
	      "Exit status: 0 mounted (in the background) or unmounted cleanly (-f),\n"
	      "1 the volumes cannot be merged (refused), 2 an I/O or mount error (also\n"
	      "a mountpoint or upper that is, lies inside or holds a volume), 64 wrong\n"
	      "usage. Unmount with: fusermount3 -u MOUNTPOINT\n",
	      out);
}

static int collect_option(void *data, const char *arg, int key, struct fuse_args *args)
{
	struct options *options = data;

	if (key == KEY_HELP) {
		options->help = true;
		return 0;
	}
	if (key == KEY_VERSION) {
		options->version = true;
		return 0;
	}
	if (key == KEY_IGNORED) {
		/* Not passed on: libfuse would drop nosuid or nodev for them, on a
		 * mount whose files, other users' included, the daemon serves as
		 * root. Not refused: mount.fuse3 passes them for an fstab line's
		 * "defaults". */
		return 0;
	}
	if (key == KEY_FSNAME || key == KEY_SUBTYPE) {
		*(key == KEY_FSNAME ? &options->fsname : &options->subtype) = true;
		return 1; /* for libfuse */
	}
	if (key == FUSE_OPT_KEY_NONOPT) {
		/* VOLUME[:VOLUME...], as in mergerfs, so it fits in /etc/fstab. */
		char *copy = xstrdup(arg), *save = NULL;

		for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save))
			name_list_add(&options->positional, p);
		free(copy);
		return 0;
	}
	return 1;
}

static int parse_kib(const char *text, unsigned int *kib)
{
	char *end;
	unsigned long value;

	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || value > READAHEAD_MAX_KIB)
		return -1;
	*kib = (unsigned int)value;
	return 0;
}

/* child == parent or below it (both resolved). */
static bool path_within(const char *child, const char *parent)
{
	size_t n = strlen(parent);

	return strncmp(child, parent, n) == 0 &&
	       (child[n] == '\0' || child[n] == '/' || strcmp(parent, "/") == 0);
}

static int check_mountpoint(const char *mountpoint)
{
	char parent[PATH_MAX + 4];
	struct stat st, up;

	if (stat(mountpoint, &st) < 0) {
		fprintf(stderr, "vmunionfs: mountpoint %s: %s\n", mountpoint, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "vmunionfs: mountpoint %s is not a directory\n", mountpoint);
		return -1;
	}
	snprintf(parent, sizeof(parent), "%s/..", mountpoint);
	if (stat(parent, &up) == 0 && (up.st_dev != st.st_dev || up.st_ino == st.st_ino)) {
		fprintf(stderr, "vmunionfs: mountpoint %s is busy: something is mounted there\n",
			mountpoint);
		return -1;
	}
	return 0;
}

/* A mountpoint that is a volume, lies inside one or holds one would hide that
 * volume behind the mount from whatever opens its path next (a vmstorage, a
 * remount), and a preview there would take the writes meant for it. */
static int check_mountpoint_location(const char *mountpoint, char **volumes, size_t count)
{
	char real_mountpoint[PATH_MAX], real[PATH_MAX];

	if (!realpath(mountpoint, real_mountpoint)) {
		fprintf(stderr, "vmunionfs: mountpoint %s: %s\n", mountpoint, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		if (!realpath(volumes[i], real))
			continue; /* volume_open reports it */
		if (path_within(real_mountpoint, real) || path_within(real, real_mountpoint)) {
			fprintf(stderr, "vmunionfs: mountpoint %s must not be the volume %s, lie "
					"inside it, nor hold it: the mount would hide it\n",
				mountpoint, volumes[i]);
			return -1;
		}
	}
	return 0;
}

/* The resolved path of a file that may not exist yet: its parent must. */
static int resolve_new_path(const char *path, char out[PATH_MAX])
{
	char *copy = xstrdup(path), *slash, parent[PATH_MAX];
	const char *name;
	int rc = 0;

	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	slash = strrchr(copy, '/');
	name = slash ? slash + 1 : copy;
	if (slash)
		*slash = '\0';
	if (!realpath(slash ? (*copy ? copy : "/") : ".", parent))
		rc = -1;
	else if (snprintf(out, PATH_MAX, "%s/%s", strcmp(parent, "/") ? parent : "", name) >=
		 PATH_MAX)
		rc = (errno = ENAMETOOLONG, -1);
	free(copy);
	return rc;
}

/* Where the upper really is: all of it resolved if it exists, else its
 * parent resolved plus its name; a dangling symlink would make mkdir create
 * its target, wherever that is, so it is refused. */
static int resolve_upper(const char *upper, char out[PATH_MAX])
{
	struct stat st;

	if (realpath(upper, out))
		return 0;
	if (errno != ENOENT) {
		fprintf(stderr, "vmunionfs: upper %s: %s\n", upper, strerror(errno));
		return -1;
	}
	if (lstat(upper, &st) == 0) {
		fprintf(stderr, "vmunionfs: upper %s is a symlink to nothing: give an existing "
				"directory or a new name\n",
			upper);
		return -1;
	}
	if (resolve_new_path(upper, out) < 0) {
		fprintf(stderr, "vmunionfs: upper %s: %s\n", upper, strerror(errno));
		return -1;
	}
	return 0;
}

/* The upper (resolved) must lie outside every volume and the mountpoint, and
 * the other way round. */
static int check_upper_location(const char *upper, const char *real_upper,
				struct volume *volumes, size_t count, const char *mountpoint)
{
	char real[PATH_MAX];

	for (size_t i = 0; i <= count; i++) {
		const char *other = i < count ? volumes[i].path : mountpoint;

		if (!realpath(other, real))
			continue;
		if (path_within(real_upper, real) || path_within(real, real_upper)) {
			fprintf(stderr, "vmunionfs: upper %s (%s) must not be inside %s %s, nor it "
					"inside the upper\n",
				upper, real_upper, i < count ? "the volume" : "the mountpoint", other);
			return -1;
		}
	}
	return 0;
}

static int open_volumes(char **paths, size_t count, struct volume **out)
{
	struct volume *volumes = xcalloc(count, sizeof(*volumes));
	struct error err;

	if (volumes_open(volumes, paths, count, &err) < 0) {
		log_error("%s", err.message);
		free(volumes);
		return -1;
	}
	*out = volumes;
	return 0;
}

/* Shared locks on the volumes for the life of the mount (see volume_lock). */
static int lock_volumes(struct volume *volumes, size_t count)
{
	struct error err;

	for (size_t i = 0; i < count; i++) {
		if (volume_lock(&volumes[i], &err) < 0) {
			log_error("refused: %s", err.message);
			return -1;
		}
	}
	return 0;
}

/* Mounts and serves until unmounted; the volumes and the upper are ready.
 * userdata is given the session by attach. */
static int serve(const struct options *options, struct fuse_args *args,
		 struct fuse_cmdline_opts *cmdline, const struct fuse_lowlevel_ops *operations,
		 void *userdata, void (*attach)(void *userdata, struct fuse_session *session),
		 int upper_fd)
{
	const struct fuse_lowlevel_ops *ops = metrics_wrap_ops(operations);
	struct readahead readahead;
	struct fuse_loop_config *loop;
	struct fuse_session *session;
	struct error err;
	int rc = EXIT_FAILURE_IO;

	session = fuse_session_new(args, ops, sizeof(*ops), userdata);
	if (!session)
		return EXIT_USAGE;
	attach(userdata, session);
	if (fuse_set_signal_handlers(session) != 0)
		goto out_session;
	readahead_prepare(&readahead, cmdline->mountpoint, options->readahead_kib);
	if (fuse_session_mount(session, cmdline->mountpoint) != 0) {
		readahead_free(&readahead);
		goto out_signals;
	}
	readahead_raise(&readahead);
	readahead_free(&readahead);
	fuse_daemonize(cmdline->foreground);
	if (metrics_start(upper_fd, &err) < 0)
		log_error("%s", err.message); /* the mount works without */
	if (cmdline->singlethread) {
		rc = fuse_session_loop(session);
	} else {
		loop = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop, (unsigned int)cmdline->clone_fd);
		fuse_loop_cfg_set_max_threads(loop, cmdline->max_threads);
		rc = fuse_session_loop_mt(session, loop);
		fuse_loop_cfg_destroy(loop);
	}
	rc = rc == 0 ? 0 : EXIT_FAILURE_IO;
	/* libfuse's handlers go before a preview has written what it still
	 * holds (fs.c, op_destroy): a SIGTERM then would kill it in the middle.
	 * The daemon exits once done. */
	block_terminating_signals();
	metrics_stop();
	fuse_session_unmount(session);
	log_info("unmounted %s", cmdline->mountpoint);
out_signals:
	fuse_remove_signal_handlers(session);
out_session:
	fuse_session_destroy(session);
	return rc;
}

/* Every file a client opens through a preview holds an fd (the daemon keeps
 * none per inode), and the read-only mount's fd cache grows to half the
 * limit: allow as many open files as the hard limit. */
static void raise_fd_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		setrlimit(RLIMIT_NOFILE, &limit);
	}
}

static void log_start(const struct plan *plan, const struct options *options,
		      const char *mountpoint)
{
	size_t files = 0;

	for (size_t i = 0; i < plan->node_count; i++)
		files += plan->nodes[i].kind != PLAN_DIR;
	log_info("mounting %zu volume(s) at %s: generation %s, %zu files, %s%s", plan->volume_count,
		 mountpoint, generation_name(plan->target), files,
		 options->upper ? "upper " : "read-only, served from memory",
		 options->upper ? options->upper : "");
	for (size_t i = 0; i < plan->volume_count; i++)
		log_info("volume %zu: %s", i, plan->volumes[i].path);
}

/* Frees the volumes' scans, once what is served is built. */
static void drop_scans(struct plan *plan)
{
	for (size_t i = 0; i < plan->volume_count; i++)
		volume_drop_scan(&plan->volumes[i]);
}

static void attach_read_only(void *fs, struct fuse_session *session)
{
	fs_plan_set_session(fs, session);
}

static void attach_preview(void *fs, struct fuse_session *session)
{
	fs_set_session(fs, session);
}

/* A read-only mount serves the plan from memory (fs_plan.c): once copied
 * out, the plan and the volumes' scans are freed, and so is the heap they
 * held. Permissions are the volumes' own, enforced by the kernel. */
static int serve_read_only(struct options *options, struct fuse_args *args,
			   struct fuse_cmdline_opts *cmdline, struct plan *plan)
{
	struct fs_plan *fs;
	struct error err;
	int rc;

	fs = fs_plan_new(plan, options->timeout, !options->nopassthrough, &err);
	if (!fs) {
		log_error("%s", err.message);
		return EXIT_FAILURE_IO;
	}
	log_start(plan, options, cmdline->mountpoint);
	drop_scans(plan);
	plan_free(plan);
	malloc_trim(0);
	fuse_opt_add_arg(args, "-oro,default_permissions");
	rc = serve(options, args, cmdline, fs_plan_operations(), fs, attach_read_only, -1);
	fs_plan_free(fs);
	return rc;
}

/* A preview serves the upper tree, where every change lands (fs.c). */
static int serve_preview(struct options *options, struct fuse_args *args,
			 struct fuse_cmdline_opts *cmdline, struct plan *plan)
{
	char real_upper[PATH_MAX];
	struct fs_config config;
	struct upper upper;
	struct error err;
	struct fs *fs;
	int rc;

	if (resolve_upper(options->upper, real_upper) < 0 ||
	    check_upper_location(options->upper, real_upper, plan->volumes, plan->volume_count,
				 cmdline->mountpoint) < 0)
		return EXIT_FAILURE_IO;
	/* the path checked above, not the symlink the user named */
	if (upper_open(&upper, real_upper, plan, &err) < 0) {
		log_error("%s", err.message);
		return EXIT_FAILURE_IO;
	}
	config = (struct fs_config){ .plan = plan, .volumes = plan->volumes,
				     .volume_count = plan->volume_count,
				     .upper_tree_fd = upper.tree_fd,
				     .timeout = options->timeout,
				     .passthrough = !options->nopassthrough };
	fs = fs_new(&config, &err);
	if (!fs) {
		log_error("%s", err.message);
		upper_close(&upper);
		return EXIT_FAILURE_IO;
	}
	/* the kernel checks access against the volumes' own permissions */
	fuse_opt_add_arg(args, "-odefault_permissions");
	log_start(plan, options, cmdline->mountpoint);
	/* The plan holds all the preview reads of the volumes but their files. */
	drop_scans(plan);
	plan_pack(plan);
	malloc_trim(0);
	rc = serve(options, args, cmdline, fs_operations(), fs, attach_preview, upper.tree_fd);
	fs_free(fs);
	upper_close(&upper);
	return rc;
}

static int run(struct options *options, struct fuse_args *args,
	       struct fuse_cmdline_opts *cmdline)
{
	size_t count = options->positional.count - 1;
	struct volume *volumes;
	struct plan plan;
	struct error err;
	int rc = EXIT_REFUSED;

	raise_fd_limit();
	if (open_volumes(options->positional.names, count, &volumes) < 0)
		return EXIT_FAILURE_IO;
	if (lock_volumes(volumes, count) < 0)
		goto out_volumes;
	if (plan_build(&plan, volumes, count, &err) < 0 ||
	    check_run(&plan, &(struct check_options){ .collisions = !options->nocheck }, NULL,
		      &err) < 0) {
		log_error("refused: %s", err.message);
		goto out_plan;
	}
	if (options->upper)
		rc = serve_preview(options, args, cmdline, &plan);
	else
		rc = serve_read_only(options, args, cmdline, &plan);
out_plan:
	plan_free(&plan);
out_volumes:
	for (size_t i = 0; i < count; i++)
		volume_close(&volumes[i]);
	free(volumes);
	return rc;
}

/* fsname (the SOURCE column of findmnt and df) names the volumes, as in
 * fstab; the user's own fsname and subtype win. */
static void add_default_names(struct fuse_args *args, const struct options *options)
{
	size_t count = options->positional.count - 1, len = strlen("-ofsname=") + 1;
	char *arg, *p;

	if (!options->subtype)
		fuse_opt_add_arg(args, "-osubtype=vmunionfs");
	if (options->fsname)
		return;
	for (size_t i = 0; i < count; i++)
		len += 2 * strlen(options->positional.names[i]) + 1;
	p = arg = xmalloc(len);
	p += sprintf(p, "-ofsname=");
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			*p++ = ':';
		for (const char *c = options->positional.names[i]; *c; c++) {
			if (*c == ',' || *c == '\\')
				*p++ = '\\'; /* fuse_opt's escape */
			*p++ = *c;
		}
	}
	*p = '\0';
	fuse_opt_add_arg(args, arg);
	free(arg);
}

/* libfuse checks its options when a session is made: make one and throw it
 * away, so that a typo is reported before any volume is opened. */
static int check_fuse_options(const struct fuse_args *args)
{
	static const struct fuse_lowlevel_ops no_operations;
	struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *session;

	for (int i = 0; i < args->argc; i++)
		fuse_opt_add_arg(&copy, args->argv[i]);
	session = fuse_session_new(&copy, &no_operations, sizeof(no_operations), NULL);
	fuse_opt_free_args(&copy);
	if (!session)
		return -1;
	fuse_session_destroy(session);
	return 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options options = { .timeout = 86400.0, .readahead_kib = READAHEAD_DEFAULT_KIB };
	struct fuse_cmdline_opts cmdline = { 0 };
	const char *mountpoint;
	struct error err;
	int rc = EXIT_USAGE, status;

	if (fuse_opt_parse(&args, &options, option_specs, collect_option) != 0)
		goto out;
	if (options.help || options.version) {
		if (options.help)
			usage(stdout);
		else
			printf("vmunionfs %s (libfuse %s, passthrough %s)\n", PACKAGE_VERSION,
			       fuse_pkgversion(), passthrough_built() ? "built" : "not built");
		rc = 0;
		goto out;
	}
	if (options.positional.count < 2) {
		fputs("vmunionfs: give at least one VOLUME and a MOUNTPOINT (see --help)\n",
		      stderr);
		goto out;
	}
	mountpoint = options.positional.names[options.positional.count - 1];
	/* Checked here: fuse_parse_cmdline would report it as a usage error. */
	if (check_mountpoint(mountpoint) < 0 ||
	    check_mountpoint_location(mountpoint, options.positional.names,
				      options.positional.count - 1) < 0) {
		rc = EXIT_FAILURE_IO;
		goto out;
	}
	fuse_opt_add_arg(&args, mountpoint);
	add_default_names(&args, &options);
	if (fuse_parse_cmdline(&args, &cmdline) != 0)
		goto out;
	/* Every option is checked before a volume is opened. */
	if (options.timeout < 0 || !(options.timeout < 1e9)) {
		fprintf(stderr, "vmunionfs: timeout=%g: give seconds from 0 to 1e9\n",
			options.timeout);
		goto out;
	}
	if (options.readahead && parse_kib(options.readahead, &options.readahead_kib) < 0) {
		fprintf(stderr, "vmunionfs: readahead=%s: give KiB from 0 to %u\n",
			options.readahead, READAHEAD_MAX_KIB);
		goto out;
	}
	if (check_fuse_options(&args) < 0)
		goto out;
	log_init(cmdline.foreground, cmdline.debug);
	status = metrics_init(options.metrics, &err);
	if (status < 0) {
		log_error("%s", err.message);
		rc = status == -EINVAL ? EXIT_USAGE : EXIT_FAILURE_IO;
		goto out;
	}
	rc = run(&options, &args, &cmdline);
	metrics_stop();
out:
	free(cmdline.mountpoint);
	free(options.metrics);
	fuse_opt_free_args(&args);
	name_list_free(&options.positional);
	free(options.upper);
	free(options.readahead);
	return rc;
}
