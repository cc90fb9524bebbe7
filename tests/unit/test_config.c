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
    char keys[8192];
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
    snprintf(dir, sizeof dir, "/tmp/mf_config_XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    test_good();
    test_errors();
    if (argc > 1)
        test_documented(argv[1]);
    else
        MF_CHECK_MSG(0, "usage: t_unit_config configs/README.md");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    MF_CHECK(mf_alloc_live_count() == 0);
    return mf_test_report();
}
