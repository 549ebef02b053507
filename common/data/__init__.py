"""Locate, verify and load datasets, and batch them from one tensor on the device.

The data folder is ``$AE_DATA_DIR`` or, when unset, ``data/`` at the repository root.
It has the layout of ``../shared/data``::

    MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    FashionMNIST/raw/  (the same four names)
    FreyFace/frey_rawface.mat
    CelebA/img_align_celeba/*.jpg, CelebA/list_eval_partition.txt, CelebA/identity_CelebA.txt
    CryptoPunks/punks.png

Every file is checked against a known SHA-256 before it is read. A missing or
corrupt file raises :class:`DataError`, which names the file, the folder searched,
the expected checksum and how to get it. ``python -m common.data download NAME``
fetches from the official source and verifies what it fetched; nothing in the
tests or CI downloads.

Images are kept as uint8 (N, C, H, W) tensors. :class:`Batches` keeps them on the
device and slices a ``randperm`` per epoch, casting to float per batch: for data that
fits in memory this is several times faster than a per-item DataLoader.

One module per concern, all re-exported here (``from common.data import load_mnist``):
``registry`` (files, checksums, :class:`DataError`), ``batches`` (:class:`Batches`,
:class:`Chunks`), ``loaders`` (:class:`ImageSet`, ``load_*`` with ``load_image_folder``, ``split``, ``concat``,
``binarize``) and ``cli`` (``download`` and the command line).
"""
from common.data.batches import Batches, Chunks
from common.data.cli import download, main
from common.data.loaders import (ImageSet, binarize, concat, load_celeba, load_cryptopunks, load_frey_face,
                                 load_image_folder, load_mnist, ratio_splits, split)
from common.data.registry import (CELEBA_FULL_SIZE, CELEBA_SUBSET_DIGEST, CELEBA_SUBSET_SIZE, DATA_ENV, DATASETS,
                                  DataError, FileSpec, checksum_of, data_dir, git_blob_id, sha256_of, verify)
