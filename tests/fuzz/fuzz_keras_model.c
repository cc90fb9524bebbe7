/* fuzz_keras_model.c: libFuzzer target for mf_model_from_keras_json (what
 * `[model] keras = m.json` runs, and mf_model_from_keras on an .h5's
 * model_config): the input is the description's text (a NUL byte ends it,
 * as it would end the string read from a file).
 *
 * Oracle beyond the sanitizers: a failure has a message and leaves *out NULL;
 * a success is a built model with at least one layer whose every layer is one
 * of the classes the reader has builders for, and whose info names a folded
 * softmax only with a layer name; nothing allocated with mf_alloc is left
 * after either (jansson's own allocations are checked by LeakSanitizer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_keras_model: %s\n", what);
    abort();
}

static int known_kind(const char *k)
{
    static const char *const kinds[] = {"Conv2D",
                                        "DepthwiseConv2D",
                                        "SeparableConv2D",
                                        "BatchNormalization",
                                        "ReLU",
                                        "Add",
                                        "ZeroPadding2D",
                                        "GlobalAveragePooling2D",
                                        "Dropout",
                                        "Dense",
                                        "Activation",
                                        "MaxPooling2D",
                                        "AveragePooling2D",
                                        "GlobalMaxPooling2D",
                                        "Flatten",
                                        "Rescaling",
                                        "Concatenate",
                                        NULL};
    for (int i = 0; kinds[i]; i++)
        if (strcmp(k, kinds[i]) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t live0 = mf_alloc_live_count();
    char *text = malloc(size + 1);
    if (!text)
        fail("out of memory");
    memcpy(text, data, size);
    text[size] = '\0';
    mf_model *m = (mf_model *)&live0; /* must be overwritten either way */
    mf_keras_info info;
    mf_clear_error();
    mf_status s = mf_model_from_keras_json_info(&m, text, "fuzz.json", 1, &info);
    free(text);
    if (s != MF_STATUS_OK) {
        if (m)
            fail("a failure that returns a model");
        if (!mf_last_error()[0])
            fail("a failure without a message");
    } else {
        if (!m || !mf_model_is_built(m) || mf_model_num_layers(m) < 1)
            fail("a success without a built model");
        for (int i = 0; i < mf_model_num_layers(m); i++)
            if (!known_kind(mf_layer_kind(mf_model_layer(m, i))))
                fail("a layer of a kind the reader has no builder for");
        if (info.softmax_folded && !info.softmax_layer[0])
            fail("a folded softmax without its layer");
        mf_model_free(m);
    }
    if (mf_alloc_live_count() != live0)
        fail("mf_alloc blocks left after the input");
    return 0;
}
