/* Error codes: names and messages, generated from the one table in core.h. */
#include "weft/core.h"

static const char *const err_messages[] = {
#define WEFT__ERR_MSG(name, msg) msg,
    WEFT_ERROR_MAP(WEFT__ERR_MSG)
#undef WEFT__ERR_MSG
};

static const char *const err_names[] = {
#define WEFT__ERR_NAME(name, msg) #name,
    WEFT_ERROR_MAP(WEFT__ERR_NAME)
#undef WEFT__ERR_NAME
};

const char *weft_strerror(int err)
{
    if (err < 0 || err >= WEFT__ERR_COUNT)
        return "unknown error";
    return err_messages[err];
}

const char *weft_err_name(int err)
{
    if (err < 0 || err >= WEFT__ERR_COUNT)
        return "EUNKNOWN";
    return err_names[err];
}
