#include <errno.h>

#include "backend.h"

/* Replaced by the fake backend (tests). */
int io_fake_create(struct io **out)
{
    (void)out;
    return -ENOTSUP;
}
