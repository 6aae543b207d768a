"""plotly.js is served from the installed plotly package (or the file TRAFFIC_PLOTLY_JS names), as one
static file under vendor/plotly/, through Django's staticfiles machinery: findstatic, collectstatic, pages."""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.templatetags.static import static

from traffic.finders import BASIC, PATH, PlotlyFinder, package_data


def test_the_vendored_basic_bundle_is_found_by_default() -> None:
    found = Path(finders.find(PATH))
    assert found == BASIC
    assert found.read_bytes()[:200].find(b"plotly.js (basic - minified) v") > 0
    assert not finders.find("vendor/plotly/widgetbundle.js")  # only the one file is offered
    assert PlotlyFinder().check() == []
    assert static(PATH).endswith("vendor/plotly/plotly.min.js")


def test_full_selects_the_installed_packages_full_bundle(settings) -> None:
    settings.TRAFFIC_PLOTLY_JS = "full"
    found = Path(PlotlyFinder().find(PATH))
    assert found == package_data() / "plotly.min.js"
    assert found.read_bytes()[:200].find(b"plotly.js v") > 0


def test_another_bundle_can_be_named_and_is_collected_under_the_same_name(settings, tmp_path: Path) -> None:
    bundle = tmp_path / "plotly-basic.min.js"
    bundle.write_text("/* a partial plotly bundle */ window.Plotly = {};\n")
    settings.TRAFFIC_PLOTLY_JS = str(bundle)
    assert Path(PlotlyFinder().find(PATH)) == bundle
    settings.STATIC_ROOT = tmp_path / "collected"
    call_command("collectstatic", "--noinput", "-v0")
    assert (settings.STATIC_ROOT / PATH).read_text() == bundle.read_text()


def test_a_missing_bundle_is_reported_by_the_system_checks(settings, tmp_path: Path) -> None:
    settings.TRAFFIC_PLOTLY_JS = str(tmp_path / "nowhere.js")
    errors = PlotlyFinder().check()
    assert [e.id for e in errors] == ["traffic.E001"] and "nowhere.js" in errors[0].msg
    assert PlotlyFinder().find(PATH) == []
