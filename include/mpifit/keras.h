/* mpifit/keras.h: build an mf_model from a Keras model description.
 *
 * Keras writes a model's architecture as JSON: model.to_json() returns it, and
 * model.save("m.h5") (the HDF5 full-model format) stores the same text as the
 * root attribute `model_config`, next to the weights under /model_weights.
 * Both forms are read here, for Sequential and Functional models, as Keras 2.x
 * writes them (`inbound_nodes` as nested lists [[name, node, tensor, kwargs]],
 * `batch_input_shape`) and as Keras 3 does (`module`/`registered_name`
 * entries, `inbound_nodes` with `args`/`keras_history`, `batch_shape`, `dtype`
 * as a DTypePolicy object).
 *
 * Every layer maps onto one mpifit layer of the same Keras class and name
 * (mpifit/layers.h). Anything mpifit cannot train exactly as Keras would is
 * refused before anything is trained, with MF_STATUS_CONFIG and a message
 *   "FILE: layer 'NAME' (CLASS): unsupported ARG = VALUE (supported: ...)"
 * : a layer class without a builder (SeparableConv2D, ...), an argument value
 * (data_format channels_first, a dtype other than float32, an activation
 * mf_activation_parse does not know, Keras 3's hard_sigmoid, a regularizer,
 * an initializer mf_initializer_parse does not know or one with arguments
 * other than Keras' defaults, depth_multiplier != 1, ...), shared layers,
 * nested models, several inputs or outputs. Malformed JSON is
 * MF_STATUS_DATA with the line and column. Initializers named in the config
 * are honoured (mf_layer_set_initializer); their seeds are not.
 *
 * Softmax: mpifit trains on logits (the loss is softmax cross-entropy from
 * logits, mf_predict applies the softmax). A softmax on the model's output
 * layer (Dense(activation="softmax") or Activation("softmax")) is therefore
 * folded into the loss: the layer is built linear (an Activation disappears)
 * and mf_keras_info says so. A softmax anywhere else is computed (an
 * Activation layer, or the fused activation of Conv2D/Dense). */
#ifndef MPIFIT_KERAS_H
#define MPIFIT_KERAS_H
#include <stdint.h>
#include "mpifit/model.h"
#include "mpifit/checkpoint.h"

/* What reading a description found besides the model (all zero when nothing). */
typedef struct mf_keras_info {
    /* 1: the output layer's softmax was folded into the loss: the model
     * outputs logits (train with mf_softmax_xent_*, predict with mf_softmax) */
    int softmax_folded;
    char softmax_layer[64]; /* the layer it was folded out of */
    /* mf_model_from_keras on a full-model .h5 with /model_weights: 1 and
     * what was loaded (every layer with weights, or the call fails) */
    int weights_loaded;
    mf_weights_report weights;
} mf_keras_info;

/* Read path, a model.to_json() file or a Keras full-model .h5 (told apart by
 * the HDF5 signature, not the name), into a new built model in *out; weights
 * are initialised from seed as Keras' defaults do, then, from an .h5 that
 * holds /model_weights, loaded from it (a layer missing there is an error).
 * *out is NULL on failure; free it with mf_model_free. Not collective (every
 * rank may call it on a shared file). */
MF_API mf_status mf_model_from_keras(mf_model **out, const char *path, uint64_t seed);
/* The same for JSON text in memory (NUL-terminated); `what` names it in
 * messages (a file name, "model_config of m.h5"). Never loads weights. */
MF_API mf_status mf_model_from_keras_json(mf_model **out, const char *json_text, const char *what, uint64_t seed);
/* Both, with what was found in *info (info may be NULL). */
MF_API mf_status mf_model_from_keras_info(mf_model **out, const char *path, uint64_t seed, mf_keras_info *info);
MF_API mf_status mf_model_from_keras_json_info(mf_model **out, const char *json_text, const char *what, uint64_t seed,
                                               mf_keras_info *info);

/* The Keras 2.x Functional description of m, as model.to_json() writes it,
 * into *json_out (mf_alloc'ed, NUL-terminated; mf_free it): {"class_name":
 * "Functional", "config": {"name", "layers", "input_layers",
 * "output_layers"}, "keras_version", "backend": "tensorflow"}. Every layer
 * keeps its name and is written with its Keras class and arguments (those
 * mpifit has: initializers, regularizers and constraints are left out, so
 * Keras takes its defaults), after an InputLayer named
 * mf_model_input_name(m) with batch_input_shape [null, H, W, C].
 *
 * Softmax: mpifit trains on logits and predicts their softmax. So the output
 * layer is written with activation "softmax" when it is linear (a Dense,
 * Conv2D or Activation; the zoo classifiers' final Dense too), and a layer
 * without an activation argument gets an Activation("softmax") named
 * "<name>_softmax" after it: Keras then predicts the probabilities mf_predict
 * gives, and mf_model_from_keras_json folds that softmax back into the loss.
 * m need not be built (its graph and shapes must be set). A layer kind with
 * no Keras description is MF_STATUS_CONFIG naming the layer; *json_out is
 * NULL on failure. */
MF_API mf_status mf_model_to_keras_json(const mf_model *m, char **json_out);
/* Write the built model m as a Keras 2 full-model HDF5 file (the layout of
 * model.save("m.h5")), atomically (path.tmp, fsync, rename): root attributes
 * model_config (mf_model_to_keras_json's text), keras_version, backend
 * ("tensorflow"), and every weight under /model_weights in the layout of
 * mf_weights_save_keras (layer_names, weight_names,
 * <layer>/<layer>/<weight>:0). No optimizer state and no training_config:
 * Keras loads it uncompiled (keras.models.load_model(path, compile=False),
 * or compile it again). mf_model_from_keras reads it back, weights included.
 * Not collective: call it on one rank. */
MF_API mf_status mf_model_to_keras(const mf_model *m, const char *path);
/* mf_model_to_keras plus a model description at the root (mpifit/checkpoint.h;
 * desc->arch MF_MODEL_DESC_KERAS, desc->classes the model's outputs, the class
 * names if known): what mpifit train writes as weights.h5 of a [model] keras
 * run, so that predict, evaluate and export --full need no config. */
MF_API mf_status mf_model_to_keras_desc(const mf_model *m, const char *path, const mf_model_desc *desc);
#endif
