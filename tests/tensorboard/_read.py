"""Reading event files back with TensorBoard's own loaders."""

from tensorboard import context
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer


def provider(logdir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={"layer_similarity": 0, "mode_connectivity": 0},
    )
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return data_provider.MultiplexerDataProvider(multiplexer, str(logdir))


def scalars(logdir, run, tag, plugin="scalars"):
    """[(step, value)] of a scalar series, as the Scalars dashboard sees it."""
    dp = provider(logdir)
    data = dp.read_scalars(
        context.RequestContext(),
        experiment_id="",
        plugin_name=plugin,
        run_tag_filter=_filter(run, tag),
        downsample=100000,
    )
    return [(d.step, d.value) for d in data[run][tag]]


def _filter(run, tag):
    from tensorboard.data import provider as base

    return base.RunTagFilter(runs=[run], tags=[tag])


def ctx():
    return context.RequestContext()
