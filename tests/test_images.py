import pytest

from notebooks_service.errors import NotFound
from notebooks_service.images import lookup_image, normalise_catalogue


def test_entries_get_defaults_and_keep_extra_keys():
    catalogue = normalise_catalogue(
        {"python": "quay.io/jupyter/scipy-notebook", "r": {"image": "quay.io/jupyter/r-notebook", "cpu": 2}}
    )
    assert catalogue["python"] == {
        "name": "python",
        "display_name": "python",
        "description": "",
        "image": "quay.io/jupyter/scipy-notebook",
    }
    assert catalogue["r"]["cpu"] == 2


@pytest.mark.parametrize("bad", [{"x": {}}, {"x": 3}, {"a/b": "img"}, {"": "img"}])
def test_bad_entries_are_refused_at_start_up(bad):
    with pytest.raises(ValueError):
        normalise_catalogue(bad)


def test_unknown_image_is_a_404_listing_the_catalogue():
    with pytest.raises(NotFound) as e:
        lookup_image(normalise_catalogue({"python": "p", "minimal": "m"}), "cobol")
    assert e.value.status_code == 404
    assert e.value.message == "Unknown image 'cobol'. Available images: minimal, python"
