import numpy as np
import pytest
import torch

import gan.data.datamodule as data_mod
from gan.data import DataNotFoundError, EpochBatchSampler, MNISTDataModule, load_split
from gan.data.idx import DataFileError


@pytest.fixture(scope="module")
def datamodule(mnist_root):
    dm = MNISTDataModule(str(mnist_root), batch_size=128, scale_to="tanh", download=False)
    dm.setup()
    return dm


def test_batches_are_full_scaled_to_tanh_range_and_cover_an_epoch(datamodule):
    loader = datamodule.train_dataloader()
    assert len(loader) == 60000 // 128  # the last partial batch is dropped
    batches = list(loader)
    assert len(batches) == 468
    x, y = batches[0]
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert y.shape == (128,)
    labels = torch.cat([b[1] for b in batches])
    assert len(labels) == 468 * 128
    assert set(labels.tolist()) == set(range(10))


def test_sigmoid_generators_get_unit_range_pixels(mnist_root):
    dm = MNISTDataModule(str(mnist_root), batch_size=64, scale_to="sigmoid", download=False)
    dm.setup()
    x, _ = next(iter(dm.train_dataloader()))
    assert x.min() == 0.0 and x.max() == 1.0


def test_digit_filter_yields_only_that_digit(mnist_root):
    dm = MNISTDataModule(str(mnist_root), batch_size=10, digits=[7], download=False)
    dm.setup()
    labels = torch.cat([y for _, y in dm.train_dataloader()])
    assert set(labels.tolist()) == {7}
    assert len(dm.train_set) == 6265  # the official count of sevens in the train split


def test_shuffle_changes_between_epochs_and_is_fixed_by_the_seed():
    a = EpochBatchSampler(1000, 100, seed=1)
    first = torch.cat(list(a))
    a.set_epoch(1)
    second = torch.cat(list(a))
    assert not torch.equal(first, second)
    assert sorted(first.tolist()) == list(range(1000))
    b = EpochBatchSampler(1000, 100, seed=1)
    assert torch.equal(first, torch.cat(list(b)))
    assert not torch.equal(first, torch.cat(list(EpochBatchSampler(1000, 100, seed=2))))


def test_ranks_get_disjoint_shares():
    shares = [torch.cat(list(EpochBatchSampler(1000, 50, seed=0, rank=r, world_size=2))) for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == 500
    assert not set(shares[0].tolist()) & set(shares[1].tolist())


def test_skip_serves_the_rest_of_the_epoch_once():
    s = EpochBatchSampler(1000, 100, seed=0)
    full = list(s)
    s.skip = 4
    rest = list(s)
    assert len(rest) == 6 and all(torch.equal(a, b) for a, b in zip(rest, full[4:]))
    assert len(list(s)) == 10  # the next pass is whole again


def test_batch_larger_than_the_selection_is_rejected(mnist_root):
    dm = MNISTDataModule(str(mnist_root), batch_size=7000, digits=[5], download=False)
    with pytest.raises(ValueError, match="data.batch_size=7000 is larger than the 5421"):
        dm.setup()


def test_missing_folder_names_folder_files_and_variable(tmp_path, monkeypatch):
    def no_network(root, dataset):
        raise OSError("no route to host")

    monkeypatch.setattr(data_mod, "_download", no_network)
    with pytest.raises(DataNotFoundError) as err:
        MNISTDataModule(str(tmp_path / "nowhere"), download=True).prepare_data()
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
    assert "GAN_DATA_ROOT" in message and "download failed" in message


def _write_idx(path, magic, shape, payload_len=None):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in shape)
    n = int(np.prod(shape)) if payload_len is None else payload_len
    path.write_bytes(header + bytes(n))


def _fake_root(tmp_path, n_images=5, n_labels=5, image_magic=2051, truncate=False):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, (img, lab) in data_mod.SPLIT_FILES.items():
        _write_idx(raw / img, image_magic, (n_images, 28, 28), payload_len=10 if truncate else None)
        _write_idx(raw / lab, 2049, (n_labels,))
    return tmp_path


def test_wrong_magic_number_is_named(tmp_path):
    root = _fake_root(tmp_path, image_magic=2049)
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte has magic number 2049"):
        load_split(root, "train", download=False)


def test_truncated_file_is_named(tmp_path):
    root = _fake_root(tmp_path, truncate=True)
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte holds .* bytes .* truncated"):
        load_split(root, "train", download=False)


def test_image_and_label_counts_must_agree(tmp_path):
    root = _fake_root(tmp_path, n_images=5, n_labels=4)
    with pytest.raises(DataFileError, match="holds 5 images but .* holds 4 labels"):
        load_split(root, "train", download=False)


def test_gzipped_files_in_the_root_itself_are_read(tmp_path, mnist_root):
    import gzip

    for img, lab in data_mod.SPLIT_FILES.values():
        for name in (img, lab):
            src = mnist_root / "MNIST" / "raw" / name
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress(src.read_bytes(), compresslevel=1))
    images, labels = load_split(tmp_path, "test", download=False)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)


# ---------------------------------------------------------------- data.subset: a class-balanced subset
def subset_labels(mnist_root, n, seed=0, **kwargs):
    dm = MNISTDataModule(str(mnist_root), batch_size=16, download=False, subset=n, seed=seed, **kwargs)
    dm.setup()
    return dm.train_set


def test_subset_gives_the_same_number_of_each_class_the_same_ones_for_the_same_seed(mnist_root):
    chosen = subset_labels(mnist_root, 1000)
    assert len(chosen) == 1000
    assert torch.bincount(chosen.labels, minlength=10).tolist() == [100] * 10
    again, other = subset_labels(mnist_root, 1000), subset_labels(mnist_root, 1000, seed=1)
    assert torch.equal(chosen.images, again.images)
    assert not torch.equal(chosen.images, other.images)


def test_subset_balances_the_digits_kept(mnist_root):
    chosen = subset_labels(mnist_root, 40, digits=[3, 8])
    assert sorted(torch.bincount(chosen.labels).nonzero().flatten().tolist()) == [3, 8]
    assert torch.bincount(chosen.labels)[[3, 8]].tolist() == [20, 20]


def test_bad_subsets_are_refused_in_one_line(mnist_root):
    with pytest.raises(ValueError, match="data.subset=1005: must be a multiple of the 10 classes kept"):
        subset_labels(mnist_root, 1005)
    with pytest.raises(ValueError, match="data.subset=0: must be a positive integer or null"):
        MNISTDataModule(str(mnist_root), subset=0)
    with pytest.raises(ValueError, match="asks for 7000 images of class 0"):
        subset_labels(mnist_root, 70000)


def test_the_low_data_experiment_trains_on_1000_images(make_cfg):
    cfg = make_cfg("experiment=low_data")
    assert cfg.data.subset == 1000 and cfg.model.discriminator._target_.endswith("InfoGANDiscriminator")
    assert make_cfg("experiment=low_data", "augment=diffaugment", run="a").augment._target_.endswith("DiffAugment")
