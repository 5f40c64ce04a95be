/* The table of every module cnn knows, by PyTorch class name. */
#include "layer.h"

#include <string.h>

/* One line per module; each family's entries live in its own section. */

/* convolution (conv.c) */
extern const cnni_op cnni_op_Conv1d, cnni_op_Conv2d, cnni_op_Conv3d;
extern const cnni_op cnni_op_ConvTranspose1d, cnni_op_ConvTranspose2d, cnni_op_ConvTranspose3d;
/* pooling (pool.c, unpool.c) -- declarations */
extern const cnni_op cnni_op_MaxPool1d, cnni_op_MaxPool2d, cnni_op_MaxPool3d;
extern const cnni_op cnni_op_AvgPool1d, cnni_op_AvgPool2d, cnni_op_AvgPool3d;
extern const cnni_op cnni_op_AdaptiveMaxPool1d, cnni_op_AdaptiveMaxPool2d, cnni_op_AdaptiveMaxPool3d;
extern const cnni_op cnni_op_AdaptiveAvgPool1d, cnni_op_AdaptiveAvgPool2d, cnni_op_AdaptiveAvgPool3d;
extern const cnni_op cnni_op_MaxUnpool1d, cnni_op_MaxUnpool2d, cnni_op_MaxUnpool3d;
/* activations and dropout (activation.c, dropout.c) -- declarations */
extern const cnni_op cnni_op_Sigmoid, cnni_op_Tanh, cnni_op_ReLU, cnni_op_LeakyReLU, cnni_op_PReLU;
extern const cnni_op cnni_op_RReLU, cnni_op_Softmax, cnni_op_LogSoftmax, cnni_op_ELU, cnni_op_GELU;
extern const cnni_op cnni_op_SiLU, cnni_op_ReLU6, cnni_op_Hardtanh, cnni_op_Hardsigmoid;
extern const cnni_op cnni_op_Hardswish, cnni_op_Softplus, cnni_op_Dropout, cnni_op_Dropout2d;
/* normalisation (norm.c) -- declarations */
extern const cnni_op cnni_op_BatchNorm1d, cnni_op_BatchNorm2d, cnni_op_BatchNorm3d;
extern const cnni_op cnni_op_InstanceNorm1d, cnni_op_InstanceNorm2d, cnni_op_InstanceNorm3d;
extern const cnni_op cnni_op_GroupNorm, cnni_op_LayerNorm;
/* losses (loss.c) -- declarations */
extern const cnni_op cnni_op_MSELoss, cnni_op_L1Loss, cnni_op_SmoothL1Loss, cnni_op_CrossEntropyLoss;
extern const cnni_op cnni_op_NLLLoss, cnni_op_BCELoss, cnni_op_BCEWithLogitsLoss;
/* linear, shape and combination (linear.c, shape.c, combine.c) -- declarations */
extern const cnni_op cnni_op_Linear, cnni_op_Flatten, cnni_op_Unflatten, cnni_op_Identity;
extern const cnni_op cnni_op_Concat, cnni_op_Add;

static const cnni_op *const table[] = {
    /* convolution */
    &cnni_op_Conv1d, &cnni_op_Conv2d, &cnni_op_Conv3d,
    &cnni_op_ConvTranspose1d, &cnni_op_ConvTranspose2d, &cnni_op_ConvTranspose3d,
    /* pooling -- entries */
    &cnni_op_MaxPool1d, &cnni_op_MaxPool2d, &cnni_op_MaxPool3d,
    &cnni_op_AvgPool1d, &cnni_op_AvgPool2d, &cnni_op_AvgPool3d,
    &cnni_op_AdaptiveMaxPool1d, &cnni_op_AdaptiveMaxPool2d, &cnni_op_AdaptiveMaxPool3d,
    &cnni_op_AdaptiveAvgPool1d, &cnni_op_AdaptiveAvgPool2d, &cnni_op_AdaptiveAvgPool3d,
    &cnni_op_MaxUnpool1d, &cnni_op_MaxUnpool2d, &cnni_op_MaxUnpool3d,
    /* activations and dropout -- entries */
    &cnni_op_Sigmoid, &cnni_op_Tanh, &cnni_op_ReLU, &cnni_op_LeakyReLU, &cnni_op_PReLU,
    &cnni_op_RReLU, &cnni_op_Softmax, &cnni_op_LogSoftmax, &cnni_op_ELU, &cnni_op_GELU,
    &cnni_op_SiLU, &cnni_op_ReLU6, &cnni_op_Hardtanh, &cnni_op_Hardsigmoid,
    &cnni_op_Hardswish, &cnni_op_Softplus, &cnni_op_Dropout, &cnni_op_Dropout2d,
    /* normalisation -- entries */
    &cnni_op_BatchNorm1d, &cnni_op_BatchNorm2d, &cnni_op_BatchNorm3d,
    &cnni_op_InstanceNorm1d, &cnni_op_InstanceNorm2d, &cnni_op_InstanceNorm3d,
    &cnni_op_GroupNorm, &cnni_op_LayerNorm,
    /* losses -- entries */
    &cnni_op_MSELoss, &cnni_op_L1Loss, &cnni_op_SmoothL1Loss, &cnni_op_CrossEntropyLoss,
    &cnni_op_NLLLoss, &cnni_op_BCELoss, &cnni_op_BCEWithLogitsLoss,
    /* linear, shape and combination -- entries */
    &cnni_op_Linear, &cnni_op_Flatten, &cnni_op_Unflatten, &cnni_op_Identity,
    &cnni_op_Concat, &cnni_op_Add,
};

#define N_OPS ((int)(sizeof table / sizeof table[0]))

int cnni_op_count(void) { return N_OPS; }
const cnni_op *cnni_op_at(int i) { return (i >= 0 && i < N_OPS) ? table[i] : NULL; }

const cnni_op *cnni_op_find(const char *name)
{
    /* "nn.Conv2d" and "torch.nn.Conv2d" name the same module. */
    if (strncmp(name, "torch.", 6) == 0)
        name += 6;
    if (strncmp(name, "nn.", 3) == 0)
        name += 3;
    for (int i = 0; i < N_OPS; i++)
        if (strcmp(table[i]->name, name) == 0)
            return table[i];
    return NULL;
}

/* Levenshtein distance, case-insensitive, capped for short names. */
static int distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    int row[41];
    for (int j = 0; j <= lb; j++)
        row[j] = j;
    for (int i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int ca = a[i - 1] | 0x20, cb = b[j - 1] | 0x20;
            int cur = row[j];
            int best = prev + (ca != cb);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

const char *cnni_op_suggest(const char *name)
{
    const char *best = NULL;
    int bd = 4;
    for (int i = 0; i < N_OPS; i++) {
        int d = distance(name, table[i]->name);
        if (d < bd) {
            bd = d;
            best = table[i]->name;
        }
    }
    return best;
}
