/* test_config.c: INI parsing, errors that name file:line and the valid choices,
 * --set overrides, and that configs/README.md documents every key. */
#include <stdlib.h>
#include <string.h>
#include "mpifit.h"
#include "cli/config.h"
#include "test.h"

static char dir[64];

static const char *write_ini(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_good(void)
{
    mf_config c;
    mf_config_defaults(&c);
    MF_CHECK(c.data.batch_size == 32 && c.model.alpha == 1.0f && c.model.input_size == 224);
    const char *p = write_ini("good.ini",
                              "# a comment\n[model]\narch = small_cnn\nalpha = 0.35\ninput_size = 96\n"
                              "[data]\ntrain = /data/beans/train\nbatch_size = 16 ; inline comment\naugment = no\n"
                              "[optimizer]\nname = sgd\nlearning_rate = 0.01\nnesterov = yes\n"
                              "[train]\nepochs = 3\nseed = 42\n[output]\ndir = runs/x\n");
    MF_CHECK(mf_config_load(&c, p) == MF_STATUS_OK);
    MF_CHECK(strcmp(c.model.arch, "small_cnn") == 0);
    MF_CHECK(c.model.alpha == 0.35f && c.model.input_size == 96);
    MF_CHECK(strcmp(c.data.train, "/data/beans/train") == 0 && c.data.batch_size == 16 && c.data.augment == 0);
    MF_CHECK(strcmp(c.optimizer.name, "sgd") == 0 && c.optimizer.nesterov == 1);
    MF_CHECK(c.train.epochs == 3 && c.train.seed == 42);
    MF_CHECK(mf_config_validate(&c) == MF_STATUS_OK);
    MF_CHECK(mf_config_set(&c, "data.batch_size=8") == MF_STATUS_OK);
    MF_CHECK(c.data.batch_size == 8);
    MF_CHECK(strstr(c.text, "batch_size = 16") && strstr(c.text, "batch_size = 8"));
    mf_config_free(&c);
}

static void expect_error(const char *name, const char *text, const char *want1, const char *want2)
{
    mf_config c;
    mf_config_defaults(&c);
    const char *p = write_ini(name, text);
    MF_CHECK(mf_config_load(&c, p) == MF_STATUS_CONFIG);
    MF_CHECK_MSG(strstr(mf_last_error(), want1) && strstr(mf_last_error(), want2), "%s: got: %s", name,
                 mf_last_error());
    mf_config_free(&c);
}

static void test_errors(void)
{
    expect_error("e1.ini", "[data]\ntrain = x\n\nbatch_size = abc\n", "e1.ini:4:", "batch_size must be an integer");
    expect_error("e2.ini", "[data]\nbatchsize = 3\n", "e2.ini:2: unknown key 'batchsize' in [data]", "batch_size");
    expect_error("e3.ini", "[dta]\nx = 1\n", "e3.ini:2: unknown section [dta]", "[data]");
    expect_error("e4.ini", "[model]\narch = resnet\n", "e4.ini:2:", "mobilenet_v2|small_cnn");
    expect_error("e5.ini", "[model]\nalpha = 0.6\n", "e5.ini:2:", "0.35|0.5|0.75|1.0|1.3|1.4");
    expect_error("e6.ini", "[model]\ninput_size = 16\n", "e6.ini:2:", "[32, 4096]");
    expect_error("e7.ini", "[data]\naugment = maybe\n", "e7.ini:2:", "true or false");
    expect_error("e8.ini", "[data]\nthis line has no equals sign\n", "e8.ini:2:", "not 'key = value'");
    expect_error("e9.ini", "[optimizer]\nlearning_rate = 1e-3x\n", "e9.ini:2:", "must be a number");
    mf_config c;
    mf_config_defaults(&c);
    MF_CHECK(mf_config_load(&c, "/nonexistent/x.ini") == MF_STATUS_IO);
    MF_CHECK(strstr(mf_last_error(), "/nonexistent/x.ini") != NULL);
    MF_CHECK(mf_config_set(&c, "data.batch_size=0") == MF_STATUS_CONFIG);
    MF_CHECK(strstr(mf_last_error(), "--set data.batch_size=0") != NULL);
    MF_CHECK(mf_config_set(&c, "batch_size=3") == MF_STATUS_CONFIG);
    MF_CHECK(mf_config_set(&c, "data.nope=3") == MF_STATUS_CONFIG);
    MF_CHECK(strstr(mf_last_error(), "valid keys") != NULL);
    /* cross-key rules */
    MF_CHECK(mf_config_validate(&c) == MF_STATUS_CONFIG); /* train not set */
    MF_CHECK(mf_config_set(&c, "data.train=/x") == MF_STATUS_OK);
    MF_CHECK(mf_config_set(&c, "data.validation_split=0.2") == MF_STATUS_OK);
    MF_CHECK(mf_config_set(&c, "data.validation=/y") == MF_STATUS_OK);
    MF_CHECK(mf_config_validate(&c) == MF_STATUS_CONFIG);
    MF_CHECK(strstr(mf_last_error(), "validation_split") != NULL);
    /* checkpoint_every: parsed once by validate, with its range */
    MF_CHECK(mf_config_set(&c, "data.validation=none") == MF_STATUS_OK);
    MF_CHECK(mf_config_validate(&c) == MF_STATUS_OK && c.output.checkpoint_steps == 0);
    MF_CHECK(mf_config_set(&c, "output.checkpoint_every=500") == MF_STATUS_OK);
    MF_CHECK(mf_config_validate(&c) == MF_STATUS_OK && c.output.checkpoint_steps == 500);
    const char *bad_every[] = {"0", "-3", "12x", "99999999999", ""};
    for (int i = 0; i < 5; i++) {
        char kv[64];
        snprintf(kv, sizeof kv, "output.checkpoint_every=%s", bad_every[i]);
        if (mf_config_set(&c, kv) != MF_STATUS_OK)
            continue; /* refused already */
        MF_CHECK_MSG(mf_config_validate(&c) == MF_STATUS_CONFIG && strstr(mf_last_error(), "checkpoint_every"),
                     "checkpoint_every = '%s' was accepted", bad_every[i]);
    }
    mf_config_free(&c);
}

/* [callbacks]: Keras' defaults, overrides, and errors that name file:line */
static void test_callbacks_section(void)
{
    mf_config c;
    mf_config_defaults(&c);
    MF_CHECK(!c.callbacks.early_stopping && !c.callbacks.reduce_lr_on_plateau);
    MF_CHECK(strcmp(c.callbacks.early_stopping_monitor, "val_loss") == 0 && c.callbacks.early_stopping_patience == 0);
    MF_CHECK(c.callbacks.reduce_lr_factor == 0.1 && c.callbacks.reduce_lr_patience == 10); /* Keras' doubles */
    MF_CHECK(c.callbacks.reduce_lr_min_delta == 1e-4 && c.callbacks.reduce_lr_min_lr == 0.0);
    const char *p = write_ini("cb.ini",
                              "[data]\ntrain = /x\nvalidation = /y\n[callbacks]\nearly_stopping = true\n"
                              "early_stopping_patience = 3\nearly_stopping_mode = max\n"
                              "early_stopping_monitor = val_accuracy\nreduce_lr_on_plateau = yes\n"
                              "reduce_lr_factor = 0.2\nreduce_lr_cooldown = 2\nreduce_lr_min_lr = 1e-5\n");
    MF_CHECK(mf_config_load(&c, p) == MF_STATUS_OK && mf_config_validate(&c) == MF_STATUS_OK);
    MF_CHECK(c.callbacks.early_stopping && c.callbacks.early_stopping_patience == 3);
    MF_CHECK(strcmp(c.callbacks.early_stopping_mode, "max") == 0 && c.callbacks.reduce_lr_on_plateau);
    MF_CHECK(c.callbacks.reduce_lr_factor == 0.2 && c.callbacks.reduce_lr_cooldown == 2);
    MF_CHECK(c.callbacks.reduce_lr_min_lr == 1e-5);
    char where[256];
    mf_config_where(&c, "callbacks", "reduce_lr_factor", where, sizeof where);
    MF_CHECK_MSG(strstr(where, "cb.ini:10") != NULL, "where: %s", where);
    mf_config_where(&c, "callbacks", "reduce_lr_patience", where, sizeof where);
    MF_CHECK(strstr(where, "cb.ini") && !strchr(where, ':'));
    MF_CHECK(mf_config_set(&c, "callbacks.reduce_lr_patience=4") == MF_STATUS_OK);
    mf_config_where(&c, "callbacks", "reduce_lr_patience", where, sizeof where);
    MF_CHECK(strcmp(where, "--set callbacks.reduce_lr_patience") == 0);
    mf_config_free(&c);

    expect_error("cb1.ini", "[callbacks]\nreduce_lr_factor = 1.5\n", "cb1.ini:2: [callbacks] reduce_lr_factor",
                 "[0, 1]");
    expect_error("cb2.ini", "[callbacks]\n\nearly_stopping_monitor = val_los\n",
                 "cb2.ini:3:", "val_loss|val_accuracy|loss|accuracy");
    expect_error("cb3.ini", "[callbacks]\nreduce_lr_mode = up\n", "cb3.ini:2:", "auto|min|max");
    expect_error("cb4.ini", "[callbacks]\nearly_stopping_patience = -1\n", "cb4.ini:2:", "must be an integer");
    expect_error("cb5.ini", "[callbacks]\npatience = 3\n", "cb5.ini:2: unknown key 'patience' in [callbacks]",
                 "early_stopping_patience");
    /* cross-key rules name the line of the key at fault */
    struct {
        const char *text, *want1, *want2;
    } bad[] = {
        {"[data]\ntrain = /x\n[callbacks]\nreduce_lr_factor = 1\n",
         "v1.ini:4: [callbacks] reduce_lr_factor must be < 1", "factor >= 1.0"},
        {"[data]\ntrain = /x\n[callbacks]\nearly_stopping = true\n", "v2.ini:4: [callbacks] early_stopping_monitor",
         "no validation data"},
        {"[data]\ntrain = /x\n[callbacks]\nreduce_lr_on_plateau = true\nreduce_lr_monitor = val_accuracy\n",
         "v3.ini:5: [callbacks] reduce_lr_monitor watches val_accuracy", "no validation data"},
        {"[data]\ntrain = /x\n[train]\nclass_weight = 2, x\n", "v4.ini:4: [train] class_weight entry 2",
         "a number >= 0, got 'x'"},
        {"[data]\ntrain = /x\n[train]\nclass_weight = 2, healthy: 1\n", "v5.ini:4: [train] class_weight mixes",
         "one form"},
        {"[data]\ntrain = /x\n[train]\nclass_weight = a: 1, a: 2\n", "v6.ini:4:", "names class 'a' twice"},
        {"[data]\ntrain = /x\n[train]\nclass_weight = 0, 0\n", "v7.ini:4:", "every weight is 0"},
        {"[data]\ntrain = /x\n[train]\nclass_weight = 1, -2\n", "v8.ini:4:", "number >= 0, got '-2'"},
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        char name[16];
        snprintf(name, sizeof name, "v%d.ini", i + 1);
        mf_config_defaults(&c);
        MF_CHECK(mf_config_load(&c, write_ini(name, bad[i].text)) == MF_STATUS_OK);
        MF_CHECK(mf_config_validate(&c) == MF_STATUS_CONFIG);
        MF_CHECK_MSG(strstr(mf_last_error(), bad[i].want1) && strstr(mf_last_error(), bad[i].want2), "%s: got: %s",
                     name, mf_last_error());
        mf_config_free(&c);
    }
    /* with validation_split, val_ monitors are fine */
    mf_config_defaults(&c);
    MF_CHECK(mf_config_load(&c,
                            write_ini("v9.ini",
                                      "[data]\ntrain = /x\nvalidation_split = 0.2\n[callbacks]\n"
                                      "early_stopping = true\n")) == MF_STATUS_OK);
    MF_CHECK(mf_config_validate(&c) == MF_STATUS_OK);
    mf_config_free(&c);
}

/* [train] class_weight: resolved against the class names (errors name file:line
 * and the class or the count), then it weighs the training loss as Keras does:
 * sum(class_weight[y_i] * l_i) / N, and not the test step's. */
static void test_class_weight(void)
{
    const char *names[3] = {"angular_leaf_spot", "bean_rust", "healthy"};
    float w[3];
    int given = -1;
    mf_config c;
    mf_config_defaults(&c);
    MF_CHECK(mf_config_class_weights(&c, names, 3, w, &given) == MF_STATUS_OK && given == 0 && w[1] == 1.0f);
    MF_CHECK(mf_config_load(&c, write_ini("w1.ini", "[data]\ntrain = /x\n\n[train]\nclass_weight = 0.5, 2, 1.25\n")) ==
             MF_STATUS_OK);
    MF_CHECK(mf_config_validate(&c) == MF_STATUS_OK);
    MF_CHECK(mf_config_class_weights(&c, names, 3, w, &given) == MF_STATUS_OK && given == 1);
    MF_CHECK(w[0] == 0.5f && w[1] == 2.0f && w[2] == 1.25f);
    MF_CHECK(mf_config_class_weights(&c, names, 2, w, &given) == MF_STATUS_CONFIG);
    MF_CHECK_MSG(strstr(mf_last_error(), "w1.ini:5: [train] class_weight has 3 weights but the data has 2 classes"),
                 "got: %s", mf_last_error());
    /* by name: the others weigh 1 */
    MF_CHECK(mf_config_set(&c, "train.class_weight=bean_rust: 3") == MF_STATUS_OK);
    MF_CHECK(mf_config_class_weights(&c, names, 3, w, &given) == MF_STATUS_OK);
    MF_CHECK(w[0] == 1.0f && w[1] == 3.0f && w[2] == 1.0f);
    MF_CHECK(mf_config_set(&c, "train.class_weight=bean_rusty: 3, healthy: 1") == MF_STATUS_OK);
    MF_CHECK(mf_config_class_weights(&c, names, 3, w, &given) == MF_STATUS_CONFIG);
    MF_CHECK_MSG(strstr(mf_last_error(), "--set train.class_weight: [train] class_weight names class 'bean_rusty'") &&
                     strstr(mf_last_error(), "classes: angular_leaf_spot, bean_rust, healthy"),
                 "got: %s", mf_last_error());
    mf_config_free(&c);
    mf_config_defaults(&c);
    MF_CHECK(mf_config_load(&c,
                            write_ini("w2.ini",
                                      "[data]\ntrain = /x\n[train]\nepochs = 2\nclass_weight = "
                                      "healthy:0.25 , angular_leaf_spot : 4\n")) == MF_STATUS_OK);
    MF_CHECK(mf_config_class_weights(&c, names, 3, w, &given) == MF_STATUS_OK);
    MF_CHECK(w[0] == 4.0f && w[1] == 1.0f && w[2] == 0.25f);
    mf_config_free(&c);

    /* the loss: with these weights, against per-row losses of the plain model */
    mf_model *m;
    MF_CHECK(mf_small_cnn(&m, 16, 3, 4, 0.0f, 1) == MF_STATUS_OK);
    mf_optimizer_options oo = mf_optimizer_defaults(MF_OPT_SGD);
    mf_fit_ctx *plain = mf_fit_ctx_create(m, 1, 0), *weighted = mf_fit_ctx_create(m, 1, 0);
    mf_loss loss = {w, 3};
    MF_CHECK(mf_compile(plain, mf_optimizer_create(m, &oo), NULL, NULL, "accuracy") == MF_STATUS_OK);
    MF_CHECK(mf_compile(weighted, mf_optimizer_create(m, &oo), NULL, &loss, "accuracy") == MF_STATUS_OK);
    static float x[4 * 16 * 16 * 3];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        x[i] = (float)((i * 7) % 13) / 6.0f - 1.0f;
    int32_t y[4] = {0, 1, 2, 1}, idx[4] = {0, 1, 2, 3};
    float bw[4] = {1, 1, 1, 0}; /* the last row is padding */
    mf_batch b = {x, y, bw, idx, 4, 3, 0};
    mf_tensor z = mf_fit_forward(plain, &b, MF_MODE_INFER);
    double want = 0.0;
    for (int i = 0; i < 3; i++) {
        mf_batch one = {x + (size_t)i * 16 * 16 * 3, y + i, bw + i, idx + i, 1, 1, 0};
        mf_tensor zi = {z.data + (size_t)i * 3, mf_shape2(1, 3)};
        want += (double)w[y[i]] * mf_fit_compiled_loss(plain, &one, &zi, NULL);
    }
    want /= 4.0; /* sum(w_i l_i) / N, padding included in N (Keras' SUM_OVER_BATCH_SIZE) */
    double got = mf_fit_compiled_loss(weighted, &b, &z, NULL);
    MF_CHECK_NEAR(got, want, 1e-6 * fabs(want));
    MF_CHECK(fabs(got - mf_fit_compiled_loss(plain, &b, &z, NULL)) > 1e-3); /* and it differs from the plain loss */
    /* the test step (validation, evaluate) sees the plain loss */
    mf_logs lp, lw;
    mf_logs_clear(&lp);
    mf_logs_clear(&lw);
    MF_CHECK(mf_test_step_default(plain, &b, &lp, NULL) == MF_STATUS_OK);
    MF_CHECK(mf_test_step_default(weighted, &b, &lw, NULL) == MF_STATUS_OK);
    double a = -1, bb = -2;
    MF_CHECK(mf_logs_get(&lp, "loss", &a) && mf_logs_get(&lw, "loss", &bb) && a == bb);
    MF_CHECK(mf_logs_get(&lp, "accuracy", &a) && mf_logs_get(&lw, "accuracy", &bb) && a == bb);
    mf_fit_ctx_free(plain);
    mf_fit_ctx_free(weighted);
    mf_model_free(m);
}

/* every key of the table appears in configs/README.md as `key` under ## [section] */
static void test_documented(const char *readme)
{
    FILE *f = fopen(readme, "r");
    MF_CHECK_MSG(f != NULL, "cannot open %s", readme);
    if (!f)
        return;
    static char doc[65536];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    doc[n] = '\0';
    fclose(f);
    static char keys[32768];
    FILE *m = fmemopen(keys, sizeof keys, "w");
    mf_config_print_keys(m);
    fclose(m);
    char *save = NULL;
    for (char *line = strtok_r(keys, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char section[32], key[64], head[48], tick[80];
        if (sscanf(line, "[%31[^]]] %63s", section, key) != 2)
            continue;
        snprintf(head, sizeof head, "## [%s]", section);
        snprintf(tick, sizeof tick, "`%s`", key);
        const char *h = strstr(doc, head);
        const char *next = h ? strstr(h + 1, "\n## ") : NULL;
        const char *k = h ? strstr(h, tick) : NULL;
        MF_CHECK_MSG(h && k && (!next || k < next), "%s does not document [%s] %s", readme, section, key);
    }
}

int main(int argc, char **argv)
{
    mf_test_dir_make(dir, sizeof dir, "config");
    test_good();
    test_errors();
    test_callbacks_section();
    test_class_weight();
    if (argc > 1)
        test_documented(argv[1]);
    else
        MF_CHECK_MSG(0, "usage: t_unit_config configs/README.md");
    mf_test_dir_remove(dir);
    MF_CHECK(mf_alloc_live_count() == 0);
    return mf_test_report();
}
