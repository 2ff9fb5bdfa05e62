"""The error summary names every field and links to its first input, radio and checkbox groups too."""

from __future__ import annotations

from django import forms
from django.template.loader import render_to_string

from portal.lib.forms import PortalForm

CHOICES = [("a", "Option A"), ("b", "Option B")]


class Questions(PortalForm):
    answer = forms.ChoiceField(
        label="NHS England's answer", choices=CHOICES, widget=forms.RadioSelect
    )
    scenarios = forms.MultipleChoiceField(
        label="Scenarios", choices=CHOICES, widget=forms.CheckboxSelectMultiple
    )
    note = forms.CharField(label="Note")


def test_it_links_radio_and_checkbox_errors_to_their_first_input_with_the_field_name():
    form = Questions(data={})
    assert not form.is_valid()
    summary = {item["label"]: item["anchor"] for item in form.error_summary()}
    assert summary == {
        "NHS England's answer": "id_answer_0",
        "Scenarios": "id_scenarios_0",
        "Note": "id_note",
    }
    html = render_to_string("forms/_error_summary.html", {"form": form}) + render_to_string(
        "forms/_fields.html", {"form": form}
    )
    assert '<a href="#id_answer_0">NHS England&#x27;s answer: This field is required.</a>' in html
    assert '<a href="#id_scenarios_0">Scenarios: This field is required.</a>' in html
    # Each link lands on an input that exists.
    assert 'id="id_answer_0"' in html and 'id="id_scenarios_0"' in html
