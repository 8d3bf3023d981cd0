"""Django's shortcuts, generic views, Paginator and ModelForm, unchanged, on a schemaless model."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.core.paginator import Paginator, UnorderedObjectListWarning
from django.db import connections
from django.forms import modelform_factory
from django.http import Http404
from django.shortcuts import get_list_or_404, get_object_or_404
from django.test import RequestFactory
from django.views.generic import DetailView, ListView

from tests.django.shop.models import Entry

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


class EntryList(ListView):
    model = Entry
    paginate_by = 3
    ordering = ["-published"]


class UserEntries(ListView):
    paginate_by = 2
    template_name = "shop/entry_list.html"

    def get_queryset(self) -> Any:
        return Entry.objects.filter(user_id=self.kwargs["user_id"]).order_by("published")


class EntryDetail(DetailView):
    model = Entry


@pytest.fixture
def entries(entities: str) -> list[Entry]:
    return [
        Entry.objects.create(user_id=7, title=f"t{i}", published=T0 + dt.timedelta(minutes=i))
        for i in range(7)
    ]


def render(view: Any, path: str = "/", **kwargs: Any) -> tuple[Any, str]:
    response = view.as_view()(RequestFactory().get(path), **kwargs)
    response.render()
    return response, response.content.decode()


def test_get_object_or_404(entries: list[Entry]) -> None:
    assert get_object_or_404(Entry, pk=entries[2].pk) == entries[2]
    assert get_object_or_404(Entry.objects.filter(user_id=7), pk=entries[3].pk) == entries[3]
    with pytest.raises(Http404, match="No Entry matches the given query."):
        get_object_or_404(Entry, pk=uuid.uuid4())
    assert len(get_list_or_404(Entry, user_id=7)) == 7
    with pytest.raises(Http404):
        get_list_or_404(Entry, user_id=8)


def test_list_view_paginates_an_ordered_queryset(entries: list[Entry]) -> None:
    response, content = render(EntryList, "/?page=2")
    assert content == "t3;t2;t1;|page 2 of 3"
    assert response.context_data["is_paginated"] and response.context_data["page_obj"].has_next()
    assert render(EntryList, "/?page=last")[1] == "t0;|page 3 of 3"
    assert render(UserEntries, "/", user_id=7)[1] == "t0;t1;|page 1 of 4"
    with pytest.raises(Http404):
        render(EntryList, "/?page=9")


def test_detail_view_names_the_object_after_its_model(entries: list[Entry]) -> None:
    response, content = render(EntryDetail, pk=str(entries[1].pk))
    assert content == "t1 by 7"  # the template reads {{ entry }}: DetailView's model-name variable
    assert response.context_data["object"] == response.context_data["entry"] == entries[1]
    with pytest.raises(Http404, match="No entry found matching the query"):
        render(EntryDetail, pk=str(uuid.uuid4()))


def test_paginator_counts_through_the_index_and_slices(entries: list[Entry]) -> None:
    paginator = Paginator(Entry.objects.filter(user_id=7).order_by("-published"), 4)
    assert (paginator.count, paginator.num_pages) == (7, 2)
    page = paginator.page(2)
    assert [e.title for e in page] == ["t2", "t1", "t0"] and page.start_index() == 5
    with pytest.warns(UnorderedObjectListWarning):
        Paginator(Entry.objects.filter(user_id=7), 4)


def test_a_model_form_validates_creates_and_edits(entities: str) -> None:
    form_class = modelform_factory(Entry, fields=["user_id", "title", "price", "tags", "extra"])
    data = {"user_id": "3", "title": "ann", "price": "1.50", "tags": "a, b", "extra": '{"k": 1}'}
    form = form_class(data=data)
    assert form.is_valid(), form.errors
    entry = form.save()
    stored = connections["entities"].store.get(entry.pk)
    assert (stored["price"], stored["tags"], stored["extra"]) == (
        Decimal("1.50"),
        ["a", "b"],
        {"k": 1},
    )
    bad = form_class(data={**data, "title": "", "price": "lots"})
    assert not bad.is_valid() and set(bad.errors) == {"title", "price"}
    edit = form_class(data={**data, "title": "bea"}, instance=Entry.objects.get(pk=entry.pk))
    assert edit.is_valid() and edit.save().pk == entry.pk
    assert connections["entities"].store.get(entry.pk)["title"] == "bea"
    assert 'value="a, b"' in str(form_class(instance=entry)["tags"])
