/* jtree.h: cJSON trees of text carbonshift does not write itself:
 * extender requests, API server and provider responses, files.
 *
 * cJSON keeps strings as C strings, so an escaped NUL (\u0000) in a value
 * would end it early: "6h\u0000junk" would read as "6h", a silently
 * different value. Parsed here, every escaped NUL becomes U+FFFD instead:
 * the value keeps its length, fails the checks any malformed value fails,
 * and shows in messages where the NUL was. cs_json_unquote_cstr (jscan.h)
 * decodes the same way, so facts read from a tree and from the bytes agree.
 *
 * Thread-safe: yes. Ownership: the tree is the caller's (cJSON_Delete); the
 * input is only read. */
#ifndef CS_JTREE_H
#define CS_JTREE_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* One JSON value, json[0..len), NULs shown as above: NULL when the text is
 * not JSON, holds more than white space after the value (cJSON alone would
 * take the first value of "{...}garbage"), or memory ran out. With `end`,
 * the text may go on after the value: *end is where the value ended, or
 * where parsing failed, in json. */
cJSON *cs_jtree_parse(const char *json, size_t len, const char **end);

#endif
