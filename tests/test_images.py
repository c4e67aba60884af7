"""skscale._images: one conversion of user inputs into images and labels."""

import numpy as np
import pytest
import torch

from skscale._images import (
    MAX_PIXEL_MAGNITUDE,
    ImageDataset,
    as_images,
    dataset_labels,
    encode_labels,
    first_dataset_image,
    image_batches,
    parse_image_shape,
    resolve_layout,
)

from .conftest import Pairs


def test_channels_last_arrays_are_read_as_numpy_and_pil_store_them():
    rgb = np.random.RandomState(0).rand(5, 16, 12, 3).astype(np.float32)
    images, layout = as_images(rgb)
    assert layout == "channels_last" and images.shape == (5, 3, 16, 12)
    np.testing.assert_array_equal(images[2, 1], rgb[2, :, :, 1])
    first, layout = as_images(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)))
    assert layout == "channels_first"
    np.testing.assert_array_equal(first, images)


@pytest.mark.parametrize(
    "shape, layout",
    [
        ((2, 64, 48, 3), "channels_last"),
        ((2, 28, 28, 1), "channels_last"),
        ((2, 10, 10, 4), "channels_last"),
        ((2, 3, 64, 48), "channels_first"),
        ((2, 16, 8, 8), "channels_first"),  # many feature maps
        ((2, 1, 1, 1), "channels_first"),  # both readings are the same image
    ],
)
def test_auto_layout_rule(shape, layout):
    assert resolve_layout(shape) == layout


def test_an_ambiguous_shape_must_be_stated():
    X = np.random.RandomState(0).rand(4, 3, 32, 3)
    with pytest.raises(ValueError, match="pass image_layout='channels_first' or 'channels_last'"):
        as_images(X)
    images, layout = as_images(X, image_layout="channels_last")
    assert images.shape == (4, 3, 3, 32) and layout == "channels_last"
    assert as_images(X, image_layout="channels_first")[0].shape == (4, 3, 32, 3)
    with pytest.raises(ValueError, match="image_layout must be one of .*, got 'nhwc'"):
        as_images(X, image_layout="nhwc")


def test_grayscale_stacks_get_one_channel():
    images, layout = as_images(np.zeros((3, 9, 7)))
    assert images.shape == (3, 1, 9, 7) and layout == "grayscale"


def test_flattened_rows_are_square_images_or_refused_naming_image_shape():
    rows = np.arange(2 * 784, dtype=np.float32).reshape(2, 784)
    images, layout = as_images(rows)
    assert images.shape == (2, 1, 28, 28) and layout == "flattened"
    np.testing.assert_array_equal(images[1, 0, 3], rows[1, 84:112])
    with pytest.raises(ValueError, match="785 features per row, which is not a square.*image_shape="):
        as_images(np.zeros((2, 785)))
    assert as_images(np.zeros((2, 785)), image_shape="row")[0].shape == (2, 1, 1, 785)
    rgb_rows = np.random.RandomState(0).rand(2, 4 * 5 * 3)
    images, _ = as_images(rgb_rows, image_shape=(4, 5, 3))
    np.testing.assert_allclose(images[0, 2], rgb_rows[0].reshape(4, 5, 3)[:, :, 2], rtol=1e-6)


def test_image_shape_must_be_a_shape():
    assert parse_image_shape((4, 5)) == (1, 4, 5) and parse_image_shape("row") is None
    with pytest.raises(ValueError, match="image_shape must be .* or 'row', got 'rows'"):
        parse_image_shape("rows")


@pytest.mark.parametrize("value", [1e20, -1e30])
def test_pixels_that_overflow_float32_are_refused(value):
    X = np.zeros((2, 8, 8))
    X[1, 3, 3] = value
    with pytest.raises(ValueError, match="X holds pixel values up to .*Rescale the images"):
        as_images(X)
    assert MAX_PIXEL_MAGNITUDE < abs(value)


def test_dataset_images_are_checked_as_they_are_read():
    images = torch.rand(4, 8, 8, 3)
    images[2, 1, 1, 0] = float("nan")
    dataset = ImageDataset(Pairs(images, ["a", "b", "a", "b"]), classes=np.array(["a", "b"]))
    image, label = dataset[1]
    assert image.shape == (3, 8, 8) and label == 1
    torch.testing.assert_close(image[2], images[1, :, :, 2])
    with pytest.raises(ValueError, match="sample 2 of the dataset holds non-finite pixel values"):
        dataset[2]
    huge = ImageDataset(Pairs(torch.full((1, 4, 4), 1e30), [0]), classes=np.array([0]))
    with pytest.raises(ValueError, match="sample 0 holds pixel values up to 1e\\+30"):
        huge[0]


def test_a_training_dataset_must_yield_labels():
    bare = Pairs(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="must yield \\(image, label\\) pairs; sample 0 is a Tensor"):
        first_dataset_image(bare)
    with pytest.raises(ValueError, match="sample 1 of the dataset is not an \\(image, label\\) pair"):
        ImageDataset(bare, classes=np.array([0, 1]))[1]
    assert ImageDataset(bare)[1][0].shape == (1, 8, 8)  # prediction ignores labels


def test_labels_and_their_indices():
    assert dataset_labels(Pairs(torch.rand(3, 4, 4), [torch.tensor(2), 0, 2])).tolist() == [2, 0, 2]
    classes = np.array(["cat", "dog"])
    assert encode_labels(np.array(["dog", "cat"]), classes).tolist() == [1, 0]
    with pytest.raises(ValueError, match="not among the classes \\['cat', 'dog'\\]: \\['emu'\\]"):
        encode_labels(np.array(["emu"]), classes)


def test_image_batches_read_the_images_through_the_net_iterator_and_stop_after_n_batches():
    class Net:
        device = "cpu"

        def get_iterator(self, dataset, training=False):
            assert not training
            return torch.utils.data.DataLoader(dataset, batch_size=2)

    images = torch.arange(5 * 3 * 3, dtype=torch.float32).reshape(5, 1, 3, 3)
    dataset = torch.utils.data.TensorDataset(images, torch.zeros(5, dtype=torch.long))
    batches = list(image_batches(Net(), dataset))
    assert [len(batch) for batch in batches] == [2, 2, 1]
    torch.testing.assert_close(torch.cat(batches), images)
    assert len(list(image_batches(Net(), dataset, n_batches=2))) == 2
