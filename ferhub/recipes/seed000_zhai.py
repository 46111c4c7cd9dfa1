"""Seed 000 — Zhai et al., "Deep Convolutional Neural Network for Facial Expression Recognition" (ICIG 2017).

LightCNN "Net B" (9 conv layers with Max-Feature-Map activations) fine-tuned from a face-recognition model,
the Double Activation Layer head (two FC layers -> element-wise maxout -> ReLU -> FC) and the Softmax-MSE loss
(eqs. 1-4), on 144x144 gray crops cut "based on these facial key points" (5 landmarks). Solver (Sec. 4.1):
base lr "10e-5" (= 1e-4), policy "fix", momentum 0.9 (Caffe SGD, no Nesterov). Batch size, epochs and weight
decay are not given in the paper: Caffe's usual 5e-4 decay and 64 / 30 are used. Pass the LightCNN-9 face
model with ``--init PATH`` (it cannot be downloaded here).

Variants: the six rows of Table 2 that are the paper's own — Net B, Net B_DAL and Net B_DAL_MSE on "SFEW2.0
new" (``sfew_*``) and on FER2013 (``fer2013_*``). "Net B" is LightCNN-9 with its own MFM fully connected layer
(ferhub's DAL without the ReLU, ``dal=False``) and softmax cross-entropy; "Net B_DAL" adds the ReLU (the DAL);
"Net B_DAL_MSE" also swaps the loss for Softmax-MSE.

Softmax-MSE optimises exactly like softmax cross-entropy: eq. 4 takes cross-entropy's gradient, so only the
loss *value* (eq. 3) differs, and from the same seed Net B_DAL and Net B_DAL_MSE train to the same weights
(ferhub's tests check it). The paper's gaps between them (45.64% / 48.51% on SFEW, 58.33% / 59.15% on FER2013)
cannot come from the loss; in ferhub the two variants differ only in the loss they log.

SFEW (Sec. 4.1): the training images get "random information [added] to three channels of the colored face
image" — Gaussian noise of std 0.05 (of the pixel range; the paper gives no amount) on each colour channel,
drawn for 70% of the crops each epoch (Table 1's "SFEW2.0 new" holds 3,194 images, about 3.3x SFEW's 958: some
70% of it are noisy copies); images where no face is detected are excluded from the training set, not replaced
by the whole image (``no_face="skip"``), while the test set stays "unchanged": the data that reports keeps
every image, the whole image standing in where no face was found; the crop is the five MTCNN landmarks mapped
onto a fixed template by a similarity (``align="similarity"``; the paper used Viola-Jones and a 5-point
detector). FER2013: no augmentation ("We didn't do data augmentation on FER2013"); its 48 px images are
already faces (no
landmarks to align on).
"""

CITATION = (
    "Zhai, Y., Liu, J., Zeng, J., Piuri, V., Scotti, F., Ying, Z., Xu, Y., Gan, J. (2017). Deep Convolutional"
    " Neural Network for Facial Expression Recognition. In: Image and Graphics (ICIG 2017), LNCS 10666, pp."
    " 211-223. Springer. https://doi.org/10.1007/978-3-319-71607-7_19"
)

NET_B_DAL_MSE = {"model_args": {"drop_rate": 0.5, "dal": True}, "loss": "softmax_mse"}
NET_B_DAL = {"model_args": {"drop_rate": 0.5, "dal": True}, "loss": "ce"}
NET_B = {"model_args": {"drop_rate": 0.5, "dal": False}, "loss": "ce"}
SFEW = {
    "augment": {"color_noise": 0.05, "color_noise_p": 0.7},
    "no_face": "skip",
}
FER2013 = {"augment": {}, "no_face": "fallback"}

RECIPE = {
    "description": "FER2013, Net B_DAL_MSE: LightCNN-9 + Double Activation Layer + Softmax-MSE, 144x144 gray "
    "(Table 2: 59.15%).",
    "model": "lightcnn9",
    "tiny_model": "test_lightcnn",
    "config_overrides": {"input_size": 144, "channels": 1, "align": "similarity"},
    "epochs": 30,
    "batch_size": 64,
    "optimizer": "sgd",
    "nesterov": False,
    "momentum": 0.9,
    "lr": 1e-4,
    "weight_decay": 5e-4,
    "schedule": "constant",
    **NET_B_DAL_MSE,
    **FER2013,
    "citation": CITATION,
}

VARIANTS = {
    "sfew_net_b": {
        "description": "SFEW2.0 new, Net B: LightCNN-9's own MFM head, softmax CE (Table 2: 46.52%).",
        **NET_B,
        **SFEW,
    },
    "sfew_net_b_dal": {
        "description": "SFEW2.0 new, Net B_DAL: + Double Activation Layer, softmax CE (Table 2: 45.64%).",
        **NET_B_DAL,
        **SFEW,
    },
    "sfew_net_b_dal_mse": {
        "description": "SFEW2.0 new, Net B_DAL_MSE: DAL + Softmax-MSE loss (Table 2: 48.51%).",
        **NET_B_DAL_MSE,
        **SFEW,
    },
    "fer2013_net_b": {
        "description": "FER2013, Net B: LightCNN-9's own MFM head, softmax CE (Table 2: 60.91%).",
        **NET_B,
        **FER2013,
    },
    "fer2013_net_b_dal": {
        "description": "FER2013, Net B_DAL: + Double Activation Layer, softmax CE (Table 2: 58.33%).",
        **NET_B_DAL,
        **FER2013,
    },
    "fer2013_net_b_dal_mse": {
        "description": "FER2013, Net B_DAL_MSE: DAL + Softmax-MSE loss (Table 2: 59.15%).",
        **NET_B_DAL_MSE,
        **FER2013,
    },
}
