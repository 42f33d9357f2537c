"""load_image: any user file becomes exactly the kind of array the model was trained on."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnn.data import DataError, load_image

GREY, RGB = (28, 28, 1), (32, 32, 3)


def test_grey_image_of_the_right_size_is_read_exactly(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png", GREY)
    assert out.shape == GREY and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], pixels)


def test_real_cifar_png_is_read_exactly(shared_data):
    path = shared_data / "cifar10-test-first20" / "cifar10_00_3.png"
    np.testing.assert_array_equal(load_image(path, RGB), np.asarray(Image.open(path)))


def test_rgb_becomes_luma_for_a_grey_model(tmp_path):
    Image.new("RGB", (28, 28), (255, 0, 0)).save(tmp_path / "red.png")
    out = load_image(tmp_path / "red.png", GREY)
    assert np.all(out == 76)  # ITU-R 601: 0.299 * 255


def test_grey_becomes_three_equal_channels_for_a_colour_model(tmp_path):
    Image.new("L", (32, 32), 200).save(tmp_path / "g.png")
    assert np.all(load_image(tmp_path / "g.png", RGB) == 200)


def test_transparency_is_composited_on_black(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere ...
    rgba[:16, :, 3] = 255  # ... but only the top half opaque
    rgba[16:, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png", RGB)
    assert np.all(out[:16] == 255) and np.all(out[16:] == 0)
    Image.fromarray(rgba[..., [0, 3]], "LA").save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png", (32, 32, 1))
    assert np.all(out[:16] == 255) and np.all(out[16:] == 0)


def test_palette_images_with_and_without_transparency(tmp_path):
    img = Image.new("P", (32, 32), 1)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    img.save(tmp_path / "p.png")
    assert np.all(load_image(tmp_path / "p.png", RGB) == [10, 200, 30])
    img.save(tmp_path / "pt.png", transparency=1)
    assert np.all(load_image(tmp_path / "pt.png", RGB) == 0)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((28, 28), 32896, np.uint16)).save(tmp_path / "16.png")
    assert np.all(load_image(tmp_path / "16.png", GREY) == 128)


@pytest.mark.parametrize("size", [(1000, 700), (31, 17), (5, 90)])
def test_any_size_is_resized_to_the_model_input(tmp_path, size):
    Image.new("RGB", size, (0, 128, 255)).save(tmp_path / "x.jpg", quality=95)
    out = load_image(tmp_path / "x.jpg", RGB)
    assert out.shape == RGB
    np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), [0, 128, 255], atol=3)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((20, 40), np.uint8)
    pixels[:, :20] = 255  # left half white, landscape
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img.save(tmp_path / "r.jpg", exif=exif, quality=100)
    out = load_image(tmp_path / "r.jpg", (40, 20, 1))[..., 0]
    # Displayed upright it is portrait with the white half on top.
    assert out[:20].mean() > 200 and out[20:].mean() < 50


def test_non_image_file_is_a_data_error_naming_it(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image at all")
    with pytest.raises(DataError, match=f"cannot read {path} as an image"):
        load_image(path, GREY)


def test_empty_file_is_a_data_error(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(DataError, match="it is empty"):
        load_image(path, GREY)


def test_truncated_png_is_a_data_error(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.png"):
        load_image(tmp_path / "cut.png", RGB)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.png"):
        load_image(tmp_path / "nope.png", GREY)


@pytest.mark.parametrize("limit", [3000, 1000])  # over 1x (Pillow warns) and 2x (Pillow raises)
def test_decompression_bombs_are_refused(tmp_path, monkeypatch, limit):
    Image.new("L", (60, 60)).save(tmp_path / "big.png")  # 3600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(DataError, match="refusing .*big.png.*too large"):
        load_image(tmp_path / "big.png", GREY)


def test_bad_channel_count_is_a_programming_error(tmp_path):
    Image.new("L", (4, 4)).save(tmp_path / "g.png")
    with pytest.raises(ValueError):
        load_image(tmp_path / "g.png", (4, 4, 2))
