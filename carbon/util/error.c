#include "carbon/util/error.h"

const char *cs_strerror(cs_err err)
{
  switch (err) {
  case CS_OK:
    return "ok";
  case CS_EINVAL:
    return "invalid value";
  case CS_EPARSE:
    return "malformed document";
  case CS_ETOOBIG:
    return "too large";
  case CS_ENOTFOUND:
    return "not found";
  case CS_EIO:
    return "input/output error";
  case CS_ETIMEDOUT:
    return "timed out";
  case CS_EHTTP:
    return "HTTP error";
  case CS_EAUTH:
    return "authentication failed";
  case CS_ESTALE:
    return "data too old";
  case CS_EUNSUPPORTED:
    return "unsupported";
  case CS_EBUSY:
    return "busy, try again later";
  case CS_EINTERNAL:
    return "internal error";
  case CS_ECANCELED:
    return "cancelled";
  }
  return "unknown error";
}
