"""The feature network of every metric: a small MNIST classifier the project trains itself.

``load_or_train_classifier(data_root, recipe="full")`` returns the classifier of a recipe, training
it on the MNIST training split the first time and caching the weights in ``$GAN_CACHE_DIR`` (else
``~/.cache/gan``) under a name that carries a hash of the recipe: the architecture, every
hyperparameter and the seed. Change any of them and the name changes, so a stale network is never
reused. Training is deterministic under the seed (on the CPU, for a given torch build and thread count).

Recipes (measured on a 2-core CPU, see the README):

- ``full``: 3 epochs of the 60000 training images, Adam with a one-cycle schedule, batch 128;
  at least 99.0% accuracy on the MNIST test split. The network of every reported figure.
- ``quick``: 1 epoch of 30000 training images; at least 97% test accuracy. For the quick tests.

``features(x)``, the 128-d output of the penultimate layer (after its ReLU), is the feature space of
FID, KID, precision/recall and the memorisation check.
Inputs are images in [0, 1] of shape ``(N, 1, 28, 28)``.

**Not a digit.** A classifier trained on digits alone maps anything, uniform noise included, to some
digit's neighbourhood: noise then lands inside the real-data manifold and scores a precision of 0.5.
So each training batch also holds ``junk_per_batch`` synthetic non-digits (uniform and sparse noise
of random strength, smooth blobs, flat images) labelled with an 11th class. That class only shapes
the feature space, which then puts non-digits away from digits; every digit metric
(``classifier_score``, ``coverage``, ``class_kl``, the test accuracy) uses the 10 digit logits.

Command line (``make classifier``)::

    python -m gan.metrics.classifier [recipe=full|quick] [data_root=PATH] [dataset=MNIST|FashionMNIST] [force=true]

**Other datasets.** ``dataset=FashionMNIST`` trains the same recipe on Fashion-MNIST's ten classes
(at least 90% test accuracy with ``full``); each dataset's classifier and statistics are cached
under its own prefix (``fashionmnist-...``) and a hash that includes the dataset, so the metrics of
a run are always measured in the features of the data it trained on. "Digit" below means class.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan.data import ROOT_ENV, load_split
from gan.runtime.files import file_in_the_way, write_atomically
from gan.data.idx import DataFileError
from gan.runtime.memory import release_free_memory

log = logging.getLogger(__name__)

CACHE_ENV = "GAN_CACHE_DIR"
NUM_DIGITS = 10
NOT_A_DIGIT = 10  # the index of the 11th output
# Bump when the training code changes in a way the recipe does not describe.
FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that determines the trained classifier (its hash names the cache file)."""

    name: str
    epochs: int
    train_images: int | None  # None: the whole training split
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    channels: tuple[int, int] = (32, 64)
    feature_dim: int = 128
    dropout: float = 0.25
    junk_per_batch: int = 16  # synthetic non-digits added to each batch, labelled NOT_A_DIGIT
    seed: int = 0
    min_accuracy: float = 0.99  # the accuracy the recipe is known to reach (a warning below it)

    def fingerprint(self, dataset: str = "MNIST") -> str:
        """A short hash of the recipe, the architecture it builds and the dataset it trains on (MNIST,
        the first dataset, is left out of the hash, so its cached classifiers keep their names)."""
        model = MNISTClassifier(self.channels, self.feature_dim, self.dropout)
        what = {"format": FORMAT, "recipe": dataclasses.asdict(self), "arch": repr(model)}
        if dataset != "MNIST":
            what["dataset"] = dataset
        blob = json.dumps(what, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


RECIPES: dict[str, Recipe] = {
    "full": Recipe(name="full", epochs=3, train_images=None, min_accuracy=0.99),
    "quick": Recipe(name="quick", epochs=1, train_images=30000, min_accuracy=0.97),
}


class MNISTClassifier(nn.Module):
    """Two strided convolutions, a 128-unit layer (the features) and a linear read-out to the 10
    digits and "not a digit".

    Strided convolutions instead of pooling keep it cheap on a CPU: about 1.5 M multiply-adds per image.
    """

    def __init__(self, channels: tuple[int, int] = (32, 64), feature_dim: int = 128, dropout: float = 0.25) -> None:
        super().__init__()
        c1, c2 = channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 5, stride=2, padding=2),  # 28 -> 14
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),  # 14 -> 7
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, NUM_DIGITS + 1))
        self.num_features = int(feature_dim)
        # filled in by load_or_train_classifier
        self.recipe: Recipe | None = None
        self.fingerprint: str | None = None
        self.test_accuracy: float | None = None
        self.dataset = "MNIST"

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer, ``(N, feature_dim)``, of images in [0, 1]."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """All 11 logits: the 10 digits, then "not a digit"."""
        return self.head(self.body(x))


def junk_images(n: int, generator: torch.Generator) -> Tensor:
    """``n`` synthetic non-digits in [0, 1]: a random mix of uniform noise of random strength, sparse
    binary noise, smooth blobs and flat grey images."""
    kind = torch.randint(0, 4, (n, 1, 1, 1), generator=generator)
    strength = torch.rand(n, 1, 1, 1, generator=generator)
    noise = torch.rand(n, 1, 28, 28, generator=generator)
    uniform = noise * strength
    sparse = (noise < strength * 0.5).float()
    blobs = F.avg_pool2d(F.pad(torch.rand(n, 1, 28, 28, generator=generator), (2, 2, 2, 2), mode="reflect"), 5, 1)
    low, high = blobs.amin((2, 3), keepdim=True), blobs.amax((2, 3), keepdim=True)
    blobs = ((blobs - low) / (high - low + 1e-6)) ** (1 + 3 * strength)
    flat = strength.expand(n, 1, 28, 28)
    return torch.where(kind == 0, uniform, torch.where(kind == 1, sparse, torch.where(kind == 2, blobs, flat)))


def cache_dir() -> Path:
    """``$GAN_CACHE_DIR`` if set, else ``~/.cache/gan``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gan").expanduser()


def resolve_data_root(data_root: str | Path | None) -> Path:
    """``data_root``, else ``$GAN_DATA_ROOT``, else ``./data`` (as the data module does)."""
    return Path(data_root or os.environ.get(ROOT_ENV) or "data")


def get_recipe(recipe: str | Recipe) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    try:
        return RECIPES[str(recipe)]
    except KeyError:
        raise ValueError(f"recipe={recipe!r} is unknown: use one of {sorted(RECIPES)}") from None


def cache_prefix(dataset: str = "MNIST") -> str:
    """The file-name prefix of a dataset's cached classifier and statistics: ``mnist``, ``fashionmnist``."""
    return dataset.lower()


def weights_path(recipe: str | Recipe, directory: str | Path | None = None, dataset: str = "MNIST") -> Path:
    recipe = get_recipe(recipe)
    name = f"{cache_prefix(dataset)}-classifier-{recipe.name}-{recipe.fingerprint(dataset)}.pt"
    return Path(directory or cache_dir()) / name


def as_unit_images(images: Tensor) -> Tensor:
    """uint8 ``(n, 28, 28)`` or float ``(n, 1, 28, 28)`` images as float ``(n, 1, 28, 28)`` in [0, 1]."""
    if images.dtype == torch.uint8:
        images = images.float().div_(255.0)
    return images.reshape(-1, 1, 28, 28).float()


@torch.no_grad()
def predict(classifier: nn.Module, images: Tensor, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """``(features (n, d), digit probabilities (n, 10))`` of images in [0, 1], in eval mode, on the CPU.

    The probabilities are the softmax of the 10 digit logits (the "not a digit" output left out)."""
    was_training = classifier.training
    classifier.eval()
    device = next(classifier.parameters()).device
    feats, probs = [], []
    try:
        for start in range(0, len(images), batch_size):
            x = as_unit_images(images[start : start + batch_size]).to(device)
            f = classifier.features(x)
            feats.append(f.float().cpu())
            probs.append(torch.softmax(classifier.head(f)[:, :NUM_DIGITS].float(), dim=1).cpu())
    finally:
        classifier.train(was_training)
    return torch.cat(feats), torch.cat(probs)


def accuracy(classifier: nn.Module, images: Tensor, labels: Tensor) -> float:
    return float((predict(classifier, images)[1].argmax(1) == labels).float().mean())


def train_classifier(recipe: str | Recipe, data_root: str | Path | None = None, dataset: str = "MNIST") -> MNISTClassifier:
    """Train the classifier of ``recipe`` on ``dataset`` from scratch (deterministic under ``recipe.seed``).

    The global RNG state of the caller is left as it was.
    """
    recipe = get_recipe(recipe)
    images, labels = load_split(resolve_data_root(data_root), "train", dataset)  # uint8, scaled per batch
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = MNISTClassifier(recipe.channels, recipe.feature_dim, recipe.dropout)
        order_rng = torch.Generator().manual_seed(recipe.seed)
        n = len(images) if recipe.train_images is None else min(recipe.train_images, len(images))
        steps_per_epoch = n // recipe.batch_size
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch)
        model.train()
        for epoch in range(recipe.epochs):
            order = torch.randperm(len(images), generator=order_rng)[:n]
            total = 0.0
            for step in range(steps_per_epoch):
                idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
                x, y = as_unit_images(images[idx]), labels[idx]
                if recipe.junk_per_batch:
                    x = torch.cat([x, junk_images(recipe.junk_per_batch, order_rng)])
                    y = torch.cat([y, torch.full((recipe.junk_per_batch,), NOT_A_DIGIT)])
                loss = F.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item()
            log.info("classifier %s: epoch %d/%d, mean loss %.4f", recipe.name, epoch + 1, recipe.epochs, total / max(steps_per_epoch, 1))
    return model.eval()


def load_or_train_classifier(
    data_root: str | Path | None = None, recipe: str | Recipe = "full", directory: str | Path | None = None,
    force: bool = False, dataset: str = "MNIST",
) -> MNISTClassifier:
    """The trained classifier of ``recipe`` on ``dataset`` (eval mode, CPU), from the cache or trained
    now and cached (each dataset under its own name and hash).

    Its ``recipe``, ``fingerprint``, ``dataset`` and ``test_accuracy`` attributes are set.
    """
    recipe = get_recipe(recipe)
    path = weights_path(recipe, directory, dataset)
    blocker = file_in_the_way(path.parent)
    if blocker is not None:  # refused now, not after the training
        raise ValueError(f"the classifier cache {path.parent} cannot be used: {blocker} is a file, not a folder; "
                         f"set {CACHE_ENV} to a folder")
    with torch.random.fork_rng(devices=[]):  # its random initial weights are overwritten: leave the caller's RNG alone
        model = MNISTClassifier(recipe.channels, recipe.feature_dim, recipe.dropout)
    stored = None
    if path.is_file() and not force:
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(stored["state_dict"])
        except Exception as err:  # a truncated or foreign file: train again and overwrite it
            log.warning("%s is not a usable classifier (%s): training it again", path, err)
            stored = None
    if stored is None:
        log.info("training the %s feature classifier (recipe %s) into %s", dataset, recipe.name, path)
        start = time.perf_counter()
        model = train_classifier(recipe, data_root, dataset)
        release_free_memory()  # its training batches and optimizer state, before the run goes on
        seconds = time.perf_counter() - start
        test_images, test_labels = load_split(resolve_data_root(data_root), "test", dataset)
        acc = accuracy(model, test_images, test_labels)
        stored = {"state_dict": model.state_dict(), "recipe": dataclasses.asdict(recipe),
                  "fingerprint": recipe.fingerprint(dataset), "dataset": dataset, "test_accuracy": acc, "train_seconds": seconds}
        write_atomically(path, lambda p: torch.save(stored, p))
        log.info("classifier %s: test accuracy %.4f after %.1f s", recipe.name, acc, seconds)
        if acc < recipe.min_accuracy and dataset == "MNIST":
            log.warning("classifier %s reached %.4f test accuracy, below the %.4f its recipe is known to reach",
                        recipe.name, acc, recipe.min_accuracy)
    model.recipe, model.fingerprint, model.dataset = recipe, recipe.fingerprint(dataset), dataset
    model.test_accuracy = float(stored["test_accuracy"])
    model.train_seconds = float(stored.get("train_seconds", float("nan")))
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    from omegaconf import OmegaConf

    args = OmegaConf.from_dotlist(list(sys.argv[1:] if argv is None else argv))
    usage = "usage: python -m gan.metrics.classifier [recipe=full|quick] [data_root=PATH] [dataset=MNIST|FashionMNIST] [force=true]"
    unknown = set(args.keys()) - {"recipe", "data_root", "force", "dataset"}
    if unknown:
        print(f"error: unknown argument(s) {sorted(unknown)}; {usage}", file=sys.stderr)
        return 2
    if not isinstance(args.get("force", False), bool):  # a word such as force=maybe must not mean yes
        print(f"error: force={args.force} must be true or false; {usage}", file=sys.stderr)
        return 2
    try:
        recipe = get_recipe(args.get("recipe", "full"))
        dataset = str(args.get("dataset", "MNIST"))
        model = load_or_train_classifier(args.get("data_root"), recipe, force=args.get("force", False), dataset=dataset)
    except (ValueError, OSError, DataFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{dataset} classifier {recipe.name} ({model.fingerprint}): test accuracy {model.test_accuracy:.4f}, "
          f"trained in {model.train_seconds:.1f} s; weights at {weights_path(recipe, dataset=dataset)}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
