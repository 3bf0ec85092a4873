import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from integrations.models import WebhookEndpoint


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEndpoint

    name = factory.Sequence(lambda n: f"receiver-{n}")
    url = "http://127.0.0.1:9/hook"
    secret = factory.Sequence(lambda n: f"secret-{n}")
    topics = factory.LazyFunction(list)
    is_active = True
    include_test_orders = False


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"agent{n}")
    is_staff = True

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        # permissions=["integrations.replay_outboxmessage", ...]
        for dotted in extracted or []:
            app_label, codename = dotted.split(".", 1)
            self.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
