/* 1_compile_fit.c: the standard way. compile() then fit(): progress, metrics,
 * validation and history come from fit.
 *
 *   usage: 1_compile_fit DATA_DIR OUT_WEIGHTS.bin */
#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        return fprintf(stderr, "usage: %s DATA_DIR OUT_WEIGHTS.bin\n", argv[0]), 2;
    mf_dataset *train, *val;
    mf_loader *tl, *vl;
    ex_data(argv[1], &train, &val, &tl, &vl);
    mf_model *model = ex_model();

    mf_fit_ctx *ctx = mf_fit_ctx_create(model, EX_SEED, 0);
    mf_schedule lr = {.kind = MF_SCHEDULE_CONSTANT, .base_lr = EX_LR};
    EX_TRY(mf_compile(ctx, ex_adam(model), &lr, NULL, "accuracy"));

    mf_fit_options fit = mf_fit_options_default();
    fit.epochs = EX_EPOCHS;
    fit.verbose = 2;
    EX_TRY(mf_fit(ctx, tl, vl, &fit));

    ex_save(model, argv[2]);
    mf_fit_ctx_free(ctx);
    mf_model_free(model);
    mf_loader_free(tl);
    mf_loader_free(vl);
    mf_dataset_free(train);
    mf_dataset_free(val);
    return 0;
}
