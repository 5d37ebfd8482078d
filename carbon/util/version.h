/* version.h: the build's version, `git describe` of the tree it was built
 * from ("dev" outside git). One object holds it, rebuilt whenever the
 * version changes (Makefile, VERSION_STAMP), so that `carbonshift version`,
 * the Serving log line, carbonshift_build_info and the User-Agent all say
 * the same, however the other objects were built. */
#ifndef CS_UTIL_VERSION_H
#define CS_UTIL_VERSION_H

extern const char cs_version[];
/* "carbonshift/<version>", the User-Agent of every HTTP request made. */
extern const char *const cs_user_agent;

#endif
