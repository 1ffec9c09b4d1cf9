/* vmunion: the offline tool (plan, and later check, materialize, verify). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "plan.h"
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
	      "\n"
	      "Options:\n"
	      "  -h, --help       show this help\n"
	      "  -V, --version    show the version\n"
	      "\n"
	      "Exit status: 0 success, 1 the volumes cannot be merged (refused),\n"
	      "2 an I/O error, 64 wrong usage.\n",
	      out);
}

/* Opens every volume; on failure closes what was opened and says why. */
static int open_volumes(char **paths, int count, struct volume **out)
{
	struct volume *volumes = xcalloc((size_t)count, sizeof(*volumes));
	struct error err;

	for (int i = 0; i < count; i++) {
		if (volume_open(&volumes[i], paths[i], &err) < 0) {
			fprintf(stderr, "vmunion: %s\n", err.message);
			while (i-- > 0)
				volume_close(&volumes[i]);
			free(volumes);
			return -1;
		}
	}
	*out = volumes;
	return 0;
}

static void close_volumes(struct volume *volumes, int count)
{
	for (int i = 0; i < count; i++)
		volume_close(&volumes[i]);
	free(volumes);
}

static int command_plan(int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	struct volume *volumes;
	struct plan plan;
	struct error err;
	int opt, count, rc;

	while ((opt = getopt_long(argc, argv, "jh", options, NULL)) != -1) {
		if (opt == 'j') {
			json = true;
		} else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else {
			return EXIT_USAGE;
		}
	}
	count = argc - optind;
	if (count < 1) {
		fputs("vmunion plan: give at least one VOLUME\n", stderr);
		return EXIT_USAGE;
	}
	if (open_volumes(argv + optind, count, &volumes) < 0)
		return 2;
	rc = plan_build(&plan, volumes, (size_t)count, &err);
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
	fprintf(stderr, "vmunion: unknown command '%s' (see vmunion --help)\n", command);
	return EXIT_USAGE;
}
