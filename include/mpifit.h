/* mpifit.h: the umbrella header. Includes the public API, nothing else.
 * Every public name starts with mf_ (types, functions) or MF_ (macros, enum values). */
#ifndef MPIFIT_H
#define MPIFIT_H
#include "mpifit/version.h"
#include "mpifit/status.h"
#include "mpifit/tensor.h"
#include "mpifit/layers.h"
#include "mpifit/model.h"
#include "mpifit/optim.h"
#include "mpifit/rng.h"
#include "mpifit/data.h"
#include "mpifit/fit.h"
#include "mpifit/checkpoint.h"
#include "mpifit/keras.h"
#include "mpifit/comm.h"
#endif
