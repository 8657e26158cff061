"""Fashion-MNIST end to end: its own classifier and statistics, the same one-line data errors, a run
that trains and evaluates, reports that name the dataset."""

import gzip
import json
import math
import shutil
from pathlib import Path

import pytest
from omegaconf import open_dict

from gan.data import DataNotFoundError, load_split
from gan.evaluate import main as evaluate_main
from gan.data.idx import DataFileError
from gan.metrics.classifier import load_or_train_classifier, weights_path
from gan.train import train
from tests.conftest import QUICK, data_root

FASHION = "FashionMNIST"


def test_each_dataset_caches_its_classifier_under_its_own_name():
    mnist, fashion = weights_path("quick"), weights_path("quick", dataset=FASHION)
    assert mnist.name.startswith("mnist-classifier-quick-") and fashion.name.startswith("fashionmnist-classifier-quick-")
    assert mnist.name.split("-")[-1] != fashion.name.split("-")[-1]  # the hash includes the dataset


def test_missing_fashion_files_name_the_folder_and_the_variable(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_split(tmp_path, "train", FASHION, download=False)
    message = str(err.value)
    assert "FashionMNIST train files not found in" in message and str(tmp_path / FASHION / "raw") in message
    assert "train-images-idx3-ubyte" in message and "GAN_DATA_ROOT" in message and "\n" not in message


def test_a_truncated_fashion_file_is_named(tmp_path):
    raw = tmp_path / FASHION / "raw"
    raw.mkdir(parents=True)
    source = data_root() / FASHION / "raw"
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(source / name, raw / name)
    images = raw / "t10k-images-idx3-ubyte.gz"
    with gzip.open(images, "rb") as f:
        data = f.read()
    with gzip.open(images, "wb") as f:
        f.write(data[:-100])
    with pytest.raises(DataFileError, match="t10k-images-idx3-ubyte.gz holds .* bytes but its header"):
        load_split(tmp_path, "test", FASHION, download=False)


def test_two_iterations_train_sample_and_evaluate_on_fashion(make_cfg, cache):
    cfg = make_cfg(*QUICK, "data=fashion_mnist", "iterations=2")
    with open_dict(cfg):
        cfg.callbacks.evaluation = {"_target_": "gan.callbacks.evaluation.Evaluation", "every": 2, "n_samples": 100,
                                    "recipe": "quick", "data_root": str(data_root()), "dataset": FASHION}
    metrics = train(cfg)
    assert math.isfinite(metrics["val/fid"]) and metrics["val_floor/fid"] < metrics["val/fid"]
    assert list(cache.glob("fashionmnist-reference-*")) and list(cache.glob("fashionmnist-floor-*"))
    assert (Path(cfg.paths.output_dir) / "samples" / "fixed_noise.png").is_file()


def test_evaluate_json_names_the_dataset(make_cfg, cache, tmp_path, capsys):
    cfg = make_cfg(*QUICK, "data=fashion_mnist", "iterations=2")
    train(cfg)
    out = tmp_path / "report.json"
    ckpt = f"{cfg.paths.output_dir}/checkpoints/last.ckpt"
    assert evaluate_main([f"ckpt={ckpt}", "n=100", "recipe=quick", f"out={out}"]) == 0
    report = json.loads(out.read_text())
    assert report["dataset"] == FASHION and report["n"] == 100 and "fid" in report["floor"]
    assert "10000 FashionMNIST test images" in capsys.readouterr().out


@pytest.mark.slow
def test_fashion_classifier_reaches_90_percent(cache):
    model = load_or_train_classifier(data_root(), "full", dataset=FASHION)
    assert model.dataset == FASHION
    assert model.test_accuracy >= 0.90
