/* SPDX-License-Identifier: Apache-2.0 */
/* vmunion: the offline tool (plan, and later check, materialize, verify). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "commit.h"
#include "config.h"
#include "live.h"
#include "materialize.h"
#include "plan.h"
#include "plan_targets.h"
#include "volume.h"

#define EXIT_USAGE 64

static void usage(FILE *out)
{
	fputs("Usage: vmunion COMMAND [OPTIONS] VOLUME...\n"
	      "\n"
	      "Merge several VictoriaMetrics vmstorage volumes into one, offline.\n"
	      "\n"
	      "Commands:\n"
	      "  plan [--json] VOLUME...   show what the merged volume will contain: per\n"
	      "                            volume, per partition, indexdb roles, hidden\n"
	      "                            entries with reasons, renames and refusals\n"
	      "       --no-check           skip the metricID collision scan (the cheap\n"
	      "                            checks of `check` always run)\n"
	      "       --targets M          propose which volumes to merge into which of M\n"
	      "                            targets (scale-down from N to M nodes)\n"
	      "  check [--json] [--deep] [--cheap] [--jobs N] VOLUME...\n"
	      "                            validate the volumes: parts.json against the\n"
	      "                            part dirs, required files, part headers, and\n"
	      "                            metricIDs naming different series on different\n"
	      "                            volumes; --deep also decodes every part;\n"
	      "                            --cheap skips the collision scan; --jobs N\n"
	      "                            threads, 1 to 256 (default: the CPUs, at most 8).\n"
	      "                            Exit status 0 clean, 1 warnings, 2 errors.\n"
	      "  materialize [OPTIONS] VOLUME... DEST\n"
	      "                            write the merged view into DEST (missing or empty),\n"
	      "                            crash-safe and resumable (see materialize --help)\n"
	      "  materialize --into TARGET [OPTIONS] VOLUME...\n"
	      "                            commit the merged view in place into TARGET, one\n"
	      "                            of the VOLUMEs, keeping its previous layout\n"
	      "  rollback TARGET           restore TARGET's layout from before the commit\n"
	      "  finalize TARGET           drop the layout kept for rollback\n"
	      "  verify [OPTIONS] VOLUME... DEST\n"
	      "                            check that DEST holds exactly the merged view\n"
	      "  verify --live URL [OPTIONS] VOLUME...\n"
	      "                            check that a running node serves every series\n"
	      "                            of the volumes with every sample (see\n"
	      "                            verify --live URL --help)\n"
	      "\n"
	      "Each command's own options: vmunion COMMAND --help.\n"
	      "\n"
	      "Options:\n"
	      "  -h, --help       show this help\n"
	      "  -V, --version    show the version\n"
	      "\n"
	      "Exit status: 0 success, 1 the volumes cannot be merged (refused),\n"
	      "2 an I/O error, 64 wrong usage. verify: 1 DEST differs from the merged\n"
	      "view. materialize: 1 also when DEST is unsafe or too small, or a vmstorage\n"
	      "holds a volume's flock.lock (nothing was written).\n",
	      out);
}

static void usage_plan(FILE *out)
{
	fputs("Usage: vmunion plan [--json] [--no-check] [--targets M] VOLUME...\n"
	      "\n"
	      "Shows what the merged volume will contain: per volume, per partition,\n"
	      "indexdb roles, hidden entries with reasons, renames and refusals.\n"
	      "\n"
	      "  --json           the plan as JSON on stdout\n"
	      "  --no-check       skip the metricID collision scan (the cheap checks of\n"
	      "                   `check` always run)\n"
	      "  --targets M      propose which volumes to merge into which of M targets\n"
	      "                   (scale-down from N to M nodes, 1 <= M <= N)\n"
	      "  -h, --help       show this help\n"
	      "\n"
	      "Exit status: 0 the volumes can be merged, 1 refused, 2 an I/O error,\n"
	      "64 wrong usage. A volume a vmstorage runs on (its flock.lock is held)\n"
	      "is planned with a warning: it may change under the plan.\n",
	      out);
}

static void usage_check(FILE *out)
{
	fputs("Usage: vmunion check [--json] [--deep] [--cheap] [--jobs N] VOLUME...\n"
	      "\n"
	      "Validates the volumes: parts.json against the part dirs, required files,\n"
	      "part headers, and metricIDs naming different series on different volumes.\n"
	      "\n"
	      "  --json           the report as JSON on stdout\n"
	      "  --deep           also decode every block of every part\n"
	      "  --cheap          skip the metricID collision scan\n"
	      "  --jobs N         threads for the part checks, 1 to 256 (default: the\n"
	      "                   number of CPUs, at most 8)\n"
	      "  -h, --help       show this help\n"
	      "\n"
	      "Exit status: 0 clean, 1 warnings (also: a vmstorage holds a volume's\n"
	      "flock.lock), 2 errors, 64 wrong usage.\n",
	      out);
}

/* Opens every volume; on failure closes what was opened and says why. */
static int open_volumes(char **paths, int count, bool json, struct volume **out)
{
	struct volume *volumes = xcalloc((size_t)count, sizeof(*volumes));
	struct error err;

	if (volumes_open(volumes, paths, (size_t)count, &err) < 0) {
		fprintf(stderr, "vmunion: %s\n", err.message);
		if (json)
			print_json_error(err.message);
		free(volumes);
		return -1;
	}
	*out = volumes;
	return 0;
}

/* The VOLUME operands of a command: an exit status, or 0 with them open. */
static int open_command_volumes(const char *command, char **paths, int count, bool json,
				struct volume **out)
{
	if (count < 1) {
		fprintf(stderr, "vmunion %s: give at least one VOLUME\n", command);
		return EXIT_USAGE;
	}
	return open_volumes(paths, count, json, out) < 0 ? 2 : 0;
}

/* Holds the volumes' flock.lock shared while they are read (see
 * volume_lock); says which a vmstorage runs on. Returns how many. */
static int warn_locked_volumes(const char *command, struct volume *volumes, int count)
{
	struct error err;
	int locked = 0;

	for (int i = 0; i < count; i++) {
		if (volume_lock(&volumes[i], &err) < 0) {
			fprintf(stderr, "vmunion %s: warning: %s; it may change while it is read\n",
				command, err.message);
			locked++;
		}
	}
	return locked;
}

static void close_volumes(struct volume *volumes, int count)
{
	for (int i = 0; i < count; i++)
		volume_close(&volumes[i]);
	free(volumes);
}

/* The checks that come before any use of a plan (check.h): cheap ones, and
 * the collision scan unless --no-check. Their errors become refusals of the
 * plan, so they print with it; with --targets, a collision between volumes
 * is a constraint on the assignment instead. */
static int check_before_use(struct plan *plan, bool collisions, bool targets,
			    struct check_report *report)
{
	struct check_options opts = { .collisions = collisions };

	check_run(plan, &opts, report, NULL);
	for (size_t i = 0; i < report->finding_count; i++) {
		const struct check_finding *f = &report->findings[i];

		if (f->severity != CHECK_ERROR || (targets && f->kind == CHECK_KIND_COLLISION))
			continue;
		*ARRAY_PUSH(plan->refusals, plan->refusal_count, plan->refusal_capacity) =
			check_finding_text(f, plan);
	}
	return plan->refusal_count ? -EINVAL : 0;
}

static int print_targets(struct plan *plan, const struct check_report *report, size_t count,
			 bool json)
{
	struct target_plan targets;
	struct error err;
	size_t refused;

	if (plan_targets(plan, report, count, &targets, &err) < 0) {
		fprintf(stderr, "vmunion: refused: %s\n", err.message);
		return 1;
	}
	if (json) {
		char *text = target_plan_print_json(&targets, plan);

		puts(text);
		free(text);
	} else {
		target_plan_print_text(&targets, plan, stdout);
	}
	refused = target_plan_refusals(&targets);
	if (refused)
		fprintf(stderr, "vmunion: refused: %zu targets cannot be merged as proposed\n",
			refused);
	target_plan_free(&targets);
	return refused ? 1 : 0;
}

static int command_plan(int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "no-check", no_argument, NULL, 'n' },
		{ "targets", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, no_check = false;
	struct check_report report = { 0 };
	struct volume *volumes;
	struct plan plan;
	struct error err;
	long targets = 0;
	char *end;
	int opt, count, rc;

	while ((opt = getopt_long(argc, argv, "jh", options, NULL)) != -1) {
		if (opt == 'j') {
			json = true;
		} else if (opt == 'n') {
			no_check = true;
		} else if (opt == 't') {
			targets = strtol(optarg, &end, 10);
			if (*end || targets < 1) {
				fputs("vmunion plan: --targets wants a number >= 1\n", stderr);
				return EXIT_USAGE;
			}
		} else if (opt == 'h') {
			usage_plan(stdout);
			return 0;
		} else {
			return EXIT_USAGE;
		}
	}
	count = argc - optind;
	rc = open_command_volumes("plan", argv + optind, count, json, &volumes);
	if (rc != 0)
		return rc;
	warn_locked_volumes("plan", volumes, count);
	rc = plan_build(&plan, volumes, (size_t)count, &err);
	if (rc == 0 && check_before_use(&plan, !no_check, targets > 0, &report) < 0)
		rc = error_set(&err, EINVAL, "%s", plan.refusals[0]);
	if (targets > 0 && rc == 0) {
		rc = print_targets(&plan, &report, (size_t)targets, json);
		check_report_free(&report);
		plan_free(&plan);
		close_volumes(volumes, count);
		return rc;
	}
	check_report_free(&report);
	if (json) {
		char *text = plan_print_json(&plan);

		puts(text);
		free(text);
	} else {
		plan_print_text(&plan, stdout);
	}
	if (rc < 0)
		fprintf(stderr, "vmunion: refused: %s\n", err.message);
	plan_free(&plan);
	close_volumes(volumes, count);
	return rc < 0 ? 1 : 0;
}

static int command_check(int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "deep", no_argument, NULL, 'd' },
		{ "cheap", no_argument, NULL, 'c' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct check_options opts = { .collisions = true };
	struct check_report report;
	struct volume *volumes;
	struct plan plan;
	bool json = false;
	long jobs;
	char *end;
	int opt, count, status, locked;

	while ((opt = getopt_long(argc, argv, "jh", options, NULL)) != -1) {
		if (opt == 'j') {
			json = true;
		} else if (opt == 'd') {
			opts.deep = true;
		} else if (opt == 'c') {
			opts.collisions = false;
		} else if (opt == 'J') {
			jobs = strtol(optarg, &end, 10);
			if (*end || jobs < 1 || jobs > 256) {
				fputs("vmunion check: --jobs wants a number from 1 to 256\n", stderr);
				return EXIT_USAGE;
			}
			opts.jobs = (unsigned)jobs;
		} else if (opt == 'h') {
			usage_check(stdout);
			return 0;
		} else {
			return EXIT_USAGE;
		}
	}
	count = argc - optind;
	status = open_command_volumes("check", argv + optind, count, json, &volumes);
	if (status != 0)
		return status;
	locked = warn_locked_volumes("check", volumes, count);
	/* A refused plan is still checked: its refusals are errors of the report. */
	plan_build(&plan, volumes, (size_t)count, NULL);
	check_run(&plan, &opts, &report, NULL);
	if (json) {
		char *text = check_print_json(&report, &plan);

		puts(text);
		free(text);
	} else {
		check_print_text(&report, &plan, stdout);
	}
	status = check_exit_status(&report);
	if (locked && status == 0)
		status = 1; /* a warning */
	check_report_free(&report);
	plan_free(&plan);
	close_volumes(volumes, count);
	return status;
}

int main(int argc, char **argv)
{
	const char *command = argc > 1 ? argv[1] : NULL;

	if (!command) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0 ||
	    strcmp(command, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(command, "-V") == 0 || strcmp(command, "--version") == 0) {
		printf("vmunion %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(command, "plan") == 0)
		return command_plan(argc - 1, argv + 1);
	if (strcmp(command, "check") == 0)
		return command_check(argc - 1, argv + 1);
	if (strcmp(command, "materialize") == 0)
		return command_materialize(argc - 1, argv + 1);
	if (strcmp(command, "verify") == 0 && live_requested(argc - 1, argv + 1))
		return command_verify_live(argc - 1, argv + 1);
	if (strcmp(command, "verify") == 0)
		return command_verify(argc - 1, argv + 1);
	if (strcmp(command, "rollback") == 0)
		return command_rollback(argc - 1, argv + 1);
	if (strcmp(command, "finalize") == 0)
		return command_finalize(argc - 1, argv + 1);
	fprintf(stderr, "vmunion: unknown command '%s' (see vmunion --help)\n", command);
	return EXIT_USAGE;
}
