#include "carbon/util/version.h"

#ifndef CS_VERSION
#define CS_VERSION "dev"
#endif

const char cs_version[] = CS_VERSION;
const char *const cs_user_agent = "carbonshift/" CS_VERSION;
