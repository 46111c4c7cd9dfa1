"""Seed 000 — Zhai et al., "Deep Convolutional Neural Network for Facial Expression Recognition" (ICIG 2017).

LightCNN "Net B" (9 conv layers with Max-Feature-Map activations) fine-tuned from a face-recognition model,
the Double Activation Layer head (two FC layers -> element-wise maxout -> ReLU -> FC) and the Softmax-MSE loss
(eqs. 1-4). 144x144 gray crops aligned on 5 landmarks. Solver (Sec. 4.1): base lr "10e-5" (= 1e-4), policy
"fix", momentum 0.9 (Caffe SGD, no Nesterov); no augmentation on FER2013. Batch size, epochs and weight decay
are not given in the paper: Caffe's usual 5e-4 decay and 64 / 30 are used. Pass the LightCNN-9 face model with
``--init PATH`` (it cannot be downloaded here).
"""

CITATION = (
    "Zhai, Y., Liu, J., Zeng, J., Piuri, V., Scotti, F., Ying, Z., Xu, Y., Gan, J. (2017). Deep Convolutional "
    "Neural Network for Facial Expression Recognition. In: Image and Graphics (ICIG 2017), LNCS 10666, "
    "pp. 211-223. Springer. https://doi.org/10.1007/978-3-319-71607-7_19"
)

RECIPE = {
    "description": "LightCNN-9 (Net B) + Double Activation Layer + Softmax-MSE loss, 144x144 gray (Zhai et al. 2017).",
    "model": "lightcnn9",
    "model_args": {"drop_rate": 0.5},  # Net B_DAL: the DAL head is part of lightcnn9
    "tiny_model": "test_lightcnn",
    "config_overrides": {"input_size": 144, "channels": 1, "align": True},
    "epochs": 30,
    "batch_size": 64,
    "optimizer": "sgd",
    "nesterov": False,
    "momentum": 0.9,
    "lr": 1e-4,
    "weight_decay": 5e-4,
    "schedule": "constant",
    "loss": "softmax_mse",
    "augment": {},
    "citation": CITATION,
}
