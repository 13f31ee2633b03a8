"""The campaigns app's models, one module per concern, re-exported by name.

Django loads ``campaigns.models``: every model module is imported here so the models
belong to the ``campaigns`` app (its label, tables and migrations stay as they were;
docs/architecture.md "Layout"). Import from ``campaigns.models``.
"""

from campaigns.models.abtests import (
    MAX_VARIANTS,
    MIN_VARIANTS,
    VARIANT_LABELS,
    ABTest,
    ABTestState,
    ABVariant,
    WinnerMetric,
)
from campaigns.models.approvals import (
    ApprovalState,
    CampaignApproval,
)
from campaigns.models.campaigns import (
    Campaign,
    CampaignStatus,
)
from campaigns.models.content import (
    EditorBlock,
    EmailTemplate,
)
from campaigns.models.delivery_plans import (
    DeliveryPlan,
)
from campaigns.models.feedback import (
    FeedbackPolicy,
    SenderEvent,
    SenderEventKind,
    UnparsedFeedback,
    UnparsedState,
)
from campaigns.models.journeys import (
    EnrollmentState,
    Journey,
    JourneyEnrollment,
    JourneyEvent,
    JourneySeen,
    JourneyStatus,
    JourneyStep,
    JourneyStepCampaign,
    JourneyStepRun,
    JourneyVersion,
    StepState,
)
from campaigns.models.presend import (
    PresendOverride,
)
from campaigns.models.proof import (
    DeliveryProof,
    EvidenceKey,
)
from campaigns.models.senders import (
    DkimAlgorithm,
    OrgSigningKey,
    SenderIdentity,
    SigningKind,
)
from campaigns.models.sending import (
    BounceEvent,
    BounceKind,
    Message,
    MessageState,
    SendChain,
)

__all__ = [
    "MAX_VARIANTS",
    "MIN_VARIANTS",
    "VARIANT_LABELS",
    "ABTest",
    "ABTestState",
    "ABVariant",
    "ApprovalState",
    "BounceEvent",
    "BounceKind",
    "Campaign",
    "CampaignApproval",
    "CampaignStatus",
    "DeliveryPlan",
    "DeliveryProof",
    "DkimAlgorithm",
    "EditorBlock",
    "EmailTemplate",
    "EnrollmentState",
    "EvidenceKey",
    "FeedbackPolicy",
    "Journey",
    "JourneyEnrollment",
    "JourneyEvent",
    "JourneySeen",
    "JourneyStatus",
    "JourneyStep",
    "JourneyStepCampaign",
    "JourneyStepRun",
    "JourneyVersion",
    "Message",
    "MessageState",
    "OrgSigningKey",
    "PresendOverride",
    "SendChain",
    "SenderEvent",
    "SenderEventKind",
    "SenderIdentity",
    "SigningKind",
    "StepState",
    "UnparsedFeedback",
    "UnparsedState",
    "WinnerMetric",
]
