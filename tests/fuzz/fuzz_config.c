/* fuzz_config.c: libFuzzer target for the INI job configuration
 * (src/cli/config.c over libinih): mf_config_parse of a file's text, the
 * --set overrides, mf_config_validate.
 *
 * Input: the config text up to the first NUL byte; after it, one --set
 * argument ("section.key=value") per line.
 *
 * Oracle beyond the sanitizers: a failure has a message, and one from the file
 * names it; a config that parses holds every string NUL-terminated inside its
 * field, numbers inside their documented ranges, and its text kept. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"
#include "cli/config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_config: %s\n", what);
    abort();
}

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static void check_parsed(const mf_config *c)
{
    if (!TERMINATED(c->model.arch) || !TERMINATED(c->model.weights) || !TERMINATED(c->data.train) ||
        !TERMINATED(c->data.validation) || !TERMINATED(c->data.on_bad_image) || !TERMINATED(c->optimizer.name) ||
        !TERMINATED(c->optimizer.schedule) || !TERMINATED(c->output.dir) ||
        !TERMINATED(c->output.checkpoint_every) || !TERMINATED(c->output.save_best) || !TERMINATED(c->path))
        fail("a string field is not NUL-terminated inside its size");
    if (c->model.input_size < 32 || c->model.input_size > 4096 || c->data.batch_size < 1 ||
        c->data.batch_size > 65536 || c->train.epochs < 1 || c->train.accumulate_steps < 1 ||
        !(c->model.dropout >= 0.0f && c->model.dropout <= 0.99f) ||
        !(c->data.crop_scale_min >= 0.05f && c->data.crop_scale_min <= 1.0f) ||
        !(c->optimizer.learning_rate >= 0.0f && c->optimizer.learning_rate <= 100.0f))
        fail("a value outside its documented range was accepted");
    if (!c->text)
        fail("a parsed config without its text");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t live0 = mf_alloc_live_count();
    /* the text, NUL-terminated as mf_config_read_file leaves it */
    const uint8_t *nul = memchr(data, '\0', size);
    size_t n = nul ? (size_t)(nul - data) : size;
    char *text = malloc(n + 1);
    char *sets = malloc(size - n + 1);
    if (!text || !sets)
        fail("out of memory");
    memcpy(text, data, n);
    text[n] = '\0';
    size_t ns = nul ? size - n - 1 : 0;
    memcpy(sets, nul ? nul + 1 : data, ns);
    sets[ns] = '\0';

    mf_config c;
    mf_config_defaults(&c);
    mf_clear_error();
    mf_status s = mf_config_parse(&c, "fuzz.ini", text);
    if (s != MF_STATUS_OK && strncmp(mf_last_error(), "fuzz.ini:", 9) != 0)
        fail("a parse error that does not name the file");
    for (char *line = sets, *next; s == MF_STATUS_OK && *line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : line + strlen(line);
        if (nl)
            *nl = '\0';
        mf_clear_error();
        s = mf_config_set(&c, line);
        if (s != MF_STATUS_OK && !mf_last_error()[0])
            fail("an --set error without a message");
    }
    if (s == MF_STATUS_OK) {
        check_parsed(&c);
        mf_clear_error();
        if (mf_config_validate(&c) != MF_STATUS_OK && !mf_last_error()[0])
            fail("a validation error without a message");
        check_parsed(&c);
    }
    mf_config_free(&c);
    free(text);
    free(sets);
    fuzz_check_alloc(live0, "a config");
    return 0;
}
