/* replay_main.c: a main for fuzz targets built without libFuzzer.
 *
 * Every argument is a file or a directory; every regular file (directories
 * are read one level deep, entries in byte order of their names, dot files
 * skipped) is read whole into a buffer of exactly its size, so that a read
 * past the end is caught by the sanitizers, and passed once to
 * LLVMFuzzerTestOneInput. Arguments starting with '-' are libFuzzer options
 * and are ignored, so the same command line works for both builds. The last
 * line printed is "replayed N inputs". Exit status 0 when every input ran
 * (a target reports a bug by aborting), 1 when a file could not be read,
 * 2 for a usage error.
 *
 * WEFT_REPLAY_VERBOSE=1 names each file before it runs, which tells which
 * input crashed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool verbose;

static int run_file(const char *path, unsigned long *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        fprintf(stderr, "replay: out of memory\n");
        return 1;
    }
    for (;;) {
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                fprintf(stderr, "replay: out of memory\n");
                return 1;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        fprintf(stderr, "replay: %s: read error\n", path);
        return 1;
    }
    /* An exact-size copy: reading one byte too far is a sanitizer report. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        fprintf(stderr, "replay: out of memory\n");
        return 1;
    }
    memcpy(exact, buf, len);
    free(buf);
    if (verbose) {
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
        fflush(stderr);
    }
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    (*count)++;
    return 0;
}

static int skip_dots(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_path(const char *path, unsigned long *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path, count);
    struct dirent **names = NULL;
    int n = scandir(path, &names, skip_dots, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        size_t plen = strlen(path) + strlen(names[i]->d_name) + 2;
        char *full = malloc(plen);
        if (full) {
            snprintf(full, plen, "%s/%s", path, names[i]->d_name);
            struct stat es;
            if (stat(full, &es) == 0 && S_ISREG(es.st_mode))
                bad |= run_file(full, count);
            free(full);
        } else {
            bad = 1;
        }
        free(names[i]);
    }
    free(names);
    return bad;
}

int main(int argc, char **argv)
{
    const char *v = getenv("WEFT_REPLAY_VERBOSE");
    verbose = v && *v && strcmp(v, "0") != 0;
    unsigned long count = 0;
    int bad = 0, paths = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        paths++;
        bad |= run_path(argv[i], &count);
    }
    if (paths == 0) {
        fprintf(stderr, "usage: %s FILE|DIR... (replays each input once)\n", argv[0]);
        return 2;
    }
    printf("replayed %lu inputs\n", count);
    return bad ? 1 : 0;
}
