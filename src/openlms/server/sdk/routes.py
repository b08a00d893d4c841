"""The SDK's websocket API, mounted on the app: `/llm`, `/embedding`, `/system`, `/files`, `/repository`.

`GET /lmstudio-greeting` (in app.py) is what the SDK probes before it connects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, WebSocket

from openlms import __version__
from openlms.core.errors import InvalidRequestError
from openlms.core.types import ModelKind
from openlms.server.sdk.convert import as_object, model_specifier
from openlms.server.sdk.files import FileStore
from openlms.server.sdk.models import ModelEndpoints, list_downloaded_models
from openlms.server.sdk.predict import PredictEndpoints
from openlms.server.sdk.repository import RepositoryEndpoints
from openlms.server.sdk.transport import Authenticator, Client, Namespace, serve_websocket
from openlms.services.chat_documents import ChatDocuments
from openlms.services.downloads import DownloadService
from openlms.services.files import FileService
from openlms.services.generation import Predictor


def namespaces(
    predictor: Predictor, downloads: DownloadService, documents: ChatDocuments
) -> dict[str, Namespace]:
    models = predictor.models
    llm = ModelEndpoints(models, ModelKind.LLM)
    embedding = ModelEndpoints(models, ModelKind.EMBEDDING)
    files = FileStore(FileService.in_home(models.settings.home))
    predict = PredictEndpoints(predictor, files, documents)

    async def list_downloaded(_client: Client, _parameter: Any) -> list[dict[str, Any]]:
        return await list_downloaded_models(models)

    async def version(_client: Client, _parameter: Any) -> dict[str, Any]:
        return {"version": __version__, "build": 0}

    async def notify(_client: Client, _parameter: Any) -> None:
        return None

    async def embed_string(_client: Client, parameter: Any) -> dict[str, Any]:
        obj = as_object(parameter)
        text = obj.get("inputString")
        if not isinstance(text, str):
            raise InvalidRequestError("'inputString' must be a string.", param="inputString")
        _, result = await predictor.embed(model_specifier(obj.get("modelSpecifier")), [text])
        return {"embedding": result.vectors[0]}

    async def preload_draft_model(_client: Client, parameter: Any) -> None:
        """Checks the draft model exists; the engine loads it with the first prediction that uses it."""
        obj = as_object(parameter)
        llm.resolve(obj.get("specifier"))
        key = obj.get("draftModelKey")
        if not isinstance(key, str) or not key:
            raise InvalidRequestError("'draftModelKey' must be a model key.", param="draftModelKey")
        await models.find_downloaded(key)

    def shared(endpoints: ModelEndpoints) -> dict[str, Any]:
        return {
            "listLoaded": endpoints.list_loaded,
            "getModelInfo": endpoints.get_model_info,
            "getLoadConfig": endpoints.get_load_config,
            "unloadModel": endpoints.unload_model,
            "tokenize": endpoints.tokenize,
            "countTokens": endpoints.count_tokens,
        }

    def loading(endpoints: ModelEndpoints) -> dict[str, Any]:
        return {"loadModel": endpoints.load_model, "getOrLoad": endpoints.get_or_load}

    return {
        "llm": Namespace(
            "llm",
            {
                **shared(llm),
                "applyPromptTemplate": predict.apply_prompt_template,
                "preloadDraftModel": preload_draft_model,
            },
            {**loading(llm), "predict": predict.predict},
        ),
        "embedding": Namespace(
            "embedding", {**shared(embedding), "embedString": embed_string}, loading(embedding)
        ),
        "system": Namespace(
            "system", {"listDownloadedModels": list_downloaded, "version": version, "notify": notify}
        ),
        "files": Namespace("files", {"uploadFileBase64": files.upload_base64}),
        "repository": RepositoryEndpoints(downloads).namespace(),
    }


def mount(app: FastAPI, predictor: Predictor, downloads: DownloadService, documents: ChatDocuments) -> None:
    auth = Authenticator()
    max_depth = predictor.models.settings.max_json_depth
    for name, namespace in namespaces(predictor, downloads, documents).items():
        app.add_api_websocket_route(f"/{name}", _endpoint(namespace, auth, max_depth))


def _endpoint(
    namespace: Namespace, auth: Authenticator, max_depth: int
) -> Callable[[WebSocket], Awaitable[None]]:
    async def endpoint(websocket: WebSocket) -> None:
        await serve_websocket(websocket, namespace, auth, max_json_depth=max_depth)

    return endpoint
