"""The Hugging Face Hub, through `huggingface_hub`: search, a repo's download options (one per
quantization, split parts grouped, the vision projector attached), and verified, resumable downloads into
`<models>/<user>/<repo>/`. See docs/downloads.md."""

from openlms.store.hub.client import HubClient
from openlms.store.hub.download import download_option, installed_path
from openlms.store.hub.quants import find_option, recommend
from openlms.store.hub.refs import parse_model_ref
from openlms.store.hub.types import (
    DownloadCancelled,
    DownloadOption,
    DownloadProgress,
    HubFile,
    ModelRef,
    RepoListing,
    SearchHit,
)

__all__ = [
    "DownloadCancelled",
    "DownloadOption",
    "DownloadProgress",
    "HubClient",
    "HubFile",
    "ModelRef",
    "RepoListing",
    "SearchHit",
    "download_option",
    "find_option",
    "installed_path",
    "parse_model_ref",
    "recommend",
]
