/* SPDX-License-Identifier: Apache-2.0 */
/* parts.json and part metadata: parse (strictly) and write, in vmstorage's format. */
#ifndef VMUNION_PARTSJSON_H
#define VMUNION_PARTSJSON_H

#include <stdint.h>

#include "util.h"

struct name_list {
	char **names;
	size_t count;
	size_t capacity;
};

void name_list_add(struct name_list *list, const char *name);
void name_list_sort(struct name_list *list);
bool name_list_contains(const struct name_list *list, const char *name);
void name_list_free(struct name_list *list);

/* A sorted view of a name_list, for lookups in O(log n) where the list's own
 * order must stay (it is the order of messages). The list must outlive it. */
struct name_set {
	char *const **entries; /* into list->names, sorted by name, then by position */
	size_t count;
};

void name_set_init(struct name_set *set, const struct name_list *list);
bool name_set_contains(const struct name_set *set, const char *name);
void name_set_free(struct name_set *set);

/* data/small/YYYY_MM/parts.json: {"Small":[...],"Big":[...]}. */
int partsjson_parse_partition(const char *text, size_t len, struct name_list *small,
			      struct name_list *big, struct error *err);
char *partsjson_format_partition(const struct name_list *small, const struct name_list *big);

/* <table>/parts.json: ["...", ...]. */
int partsjson_parse_table(const char *text, size_t len, struct name_list *names,
			  struct error *err);
char *partsjson_format_table(const struct name_list *names);

/* What a part says about itself: metadata.json (gen B/C) or its name (gen A). */
struct part_header {
	uint64_t rows;          /* ItemsCount for mergeset parts */
	uint64_t blocks;
	int64_t min_timestamp;  /* ms; data parts only */
	int64_t max_timestamp;
};

int part_header_from_json(const char *text, size_t len, bool mergeset,
			  struct part_header *header, struct error *err);
/* Gen A: <rows>_<blocks>_<min>_<max>_<16HEX> (data) or <items>_<blocks>_<16HEX>. */
int part_header_from_name(const char *name, bool mergeset, struct part_header *header);
/* Offset of the 16-hex suffix of a gen-A name, or -1 when it is not one. */
int legacy_name_suffix(const char *name, bool mergeset);

#endif
