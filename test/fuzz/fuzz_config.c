/*
 * fuzz_config.c — libFuzzer target for the configuration file reader
 * (config_load_file, both formats) and what reads a config back
 * (config_dump, config_get).
 *
 *   input ─► memfd ─► config_load_file ─┬─ refused: fine, no crash, no leak
 *                                       └─ accepted ─► config_dump = D1
 *                        D1 ─► memfd ─► config_load_file ─► config_dump = D2
 *
 * Property: whatever the reader accepts, config_dump writes in a form the
 * reader accepts again and that describes the same configuration (D1 ==
 * D2), so a dump can never print something --check-config would not read
 * back (a reader that accepted nothing would pass this, but the seed
 * corpus and the unit tests show it accepts real files). A file is
 * handed over as /proc/self/fd/N of a memfd, so the real file path (open,
 * fstat, read, include resolution) is what gets fuzzed.
 *
 * Build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 \
 *       -D_GNU_SOURCE test/fuzz/fuzz_config.c config/config.c \
 *       config/config_file.c -linih \
 *       -o build/fuzz_config
 *   build/fuzz_config -max_total_time=30 test/fuzz/corpus/config
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Load `size` bytes as a config file over the defaults. */
static int load_bytes(struct config *c, const void *data, size_t size)
{
    char path[64], err[1024];
    int fd = memfd_create("fuzz.conf", MFD_CLOEXEC);
    int rc = -1;

    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    if (write(fd, data, size) == (ssize_t)size) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        config_defaults(c);
        rc = config_load_file(c, path, err, sizeof(err));
        if (rc != 0 && err[0] == '\0') {
            fprintf(stderr, "refused without a message\n");
            abort();
        }
    }
    close(fd);
    return rc;
}

/* config_dump's text; the caller frees it. */
static char *dump(const struct config *c, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);

    if (f == NULL || config_dump(c, f) != 0)
        abort();
    fclose(f);
    return text;
}

static void count_option(void *arg, const char *name,
                         const struct config_value *v)
{
    (void)name;
    (void)v;
    ++*(size_t *)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* static: 2 x 35 KB is more than a fuzzer's stack should carry */
    static struct config first, second;
    size_t len1, len2, n = 0;

    if (load_bytes(&first, data, size) != 0)
        return 0;
    char *d1 = dump(&first, &len1);
    if (load_bytes(&second, d1, len1) != 0) {
        fprintf(stderr, "the dump of an accepted file is refused:\n%s", d1);
        abort();
    }
    char *d2 = dump(&second, &len2);
    if (len1 != len2 || memcmp(d1, d2, len1) != 0) {
        fprintf(stderr, "dump changed on reload:\n%s\n---\n%s", d1, d2);
        abort();
    }
    config_get(&first, "*", count_option, &n);
    free(d1);
    free(d2);
    return 0;
}
