from django import forms

from .models import Comment, Entry


class EntryForm(forms.ModelForm):
    class Meta:
        model = Entry
        fields = ["user", "title", "tags"]


class CommentForm(forms.ModelForm):
    class Meta:
        model = Comment
        fields = ["user", "body"]


class LikeForm(forms.Form):
    user = forms.CharField(max_length=40)
