"""tfi2i: paired image-to-image translation GANs (pix2pix and four papers built on it)
in TensorFlow 2 / Keras 3."""
from setuptools import find_packages, setup

setup(
    name="tfi2i",
    version="0.1.0",
    description="Faithful TF2/Keras 3 reproductions of paired image-to-image translation GANs",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tfi2i", "tfi2i.*"]),
    install_requires=[
        # Keras 3 is the only Keras we support; tensorflow-addons is NOT used (see README).
        "tensorflow>=2.16",
        "keras>=3.0",
        "tensorboard",  # TF 2.21 no longer pulls it in; tf.summary needs it
        "tensorflow-datasets",
        "importlib_resources",  # tfds download_and_prepare on Python 3.11 needs it
        "numpy",
        "opencv-python-headless",
        "tqdm",  # progress bars (training, downloads, evaluation)
        "matplotlib",  # loss-curve plots, spectra, heat-maps
        "scipy",  # FID: scipy.linalg.sqrtm (tfi2i.metrics.fid)
        "scikit-learn",  # pix2pixHD feature clusters: sklearn.cluster.KMeans, as NVIDIA (tfi2i.features)
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "scikit-image", "pillow", "sewar", "nbmake"],
        "notebooks": ["jupyter", "matplotlib", "papermill", "nbmake"],
        "serving": ["tensorflow-serving-api>=2.16"],
        "lpips": ["lpips", "torch", "torchvision"],  # LPIPS through the reference package (tfi2i.metrics.lpips)  # gRPC client for TF Serving (docs/serving.md)
    },
    entry_points={"console_scripts": ["tfi2i=tfi2i.cli:main"]},
)
