/*
 * What the fuzz targets share: CHECK(cond, fmt, …) aborts with a message
 * when a property of the code under test does not hold, so libFuzzer
 * records the input as a finding.
 */
#ifndef RINGSLOT_FUZZ_CHECK_H
#define RINGSLOT_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "property failed: %s\n  ", #cond);              \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)

#endif
