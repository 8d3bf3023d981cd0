from django.views.generic import DetailView, ListView

from .models import Entry


class EntryList(ListView):
    model = Entry
    ordering = ["-published"]  # served by the index entry_published
    paginate_by = 5


class UserEntries(ListView):
    paginate_by = 5
    template_name = "blog/entry_list.html"

    def get_queryset(self):
        return Entry.objects.filter(user_id=self.kwargs["user_id"]).order_by("-published")


class EntryDetail(DetailView):
    model = Entry
    template_name = "blog/entry_detail.html"  # DetailView names templates only for Django models
