"""SAE features for the compliance gap: which sparse features carry "being trained", and does editing them move
the gap?

Modules (one concept each):

- :mod:`.load`: load an SAE through sae-lens (local sae-lens dir, sparsify dir, or a sae-lens release) and check
  that it fits the model (width, site/layer, model name);
- :mod:`.train`: train TopK SAEs on a model's residual stream offline with sae-lens's ``SAETrainer``;
- :mod:`.quality`: FVE, L0, dead features and the metric change when the SAE is spliced in (with / without error);
- :mod:`.features`: feature activations at named positions and the features that differ between arms (by query);
- :mod:`.attribution`: gradient x activation / integrated-gradients attribution to the metric, error node included;
- :mod:`.intervene`: zero / mean ablation or steering of feature sets, compliance per arm and gap, random controls;
- :mod:`.context`: top-activating tokens and prompts of a feature.

Every analysis takes a model handle (``interp_af.models``), a :class:`LoadedSAE`, the studied
``RenderedPrompt`` s and the decision tokens (``interp_af.models.metric.decision_tokens``).
"""

from .attribution import FeatureAttribution, attribute_features
from .context import FeatureContext, feature_context, top_prompts_from_capture
from .features import DifferentialFeatures, FeatureActs, differential_features, encode_capture, encode_prompts
from .intervene import Condition, FeatureIntervention, intervene_features
from .load import (LoadedSAE, as_sae, ReleaseInfo, check_fit, fit_problems, hook_to_site, load_sae, sae_dirs,
                   release_info, site_to_hook)
from .quality import SAEQuality, sae_quality
from .study import StudyConfig, run_study
from .train import SAETrainConfig, TrainedSAE, collect_activations, train_saes

__all__ = [
    "Condition", "DifferentialFeatures", "FeatureActs", "FeatureAttribution", "FeatureContext", "FeatureIntervention",
    "LoadedSAE", "ReleaseInfo", "SAEQuality", "SAETrainConfig", "TrainedSAE", "attribute_features", "check_fit",
    "collect_activations", "differential_features", "encode_capture", "encode_prompts", "feature_context",
    "as_sae", "fit_problems", "hook_to_site", "intervene_features", "load_sae", "sae_dirs", "release_info", "run_study", "sae_quality", "StudyConfig", "site_to_hook",
    "top_prompts_from_capture", "train_saes",
]
