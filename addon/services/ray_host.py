"""`uplift serve --ray`: the same FastAPI app hosted on Ray Serve, for a studio's GPUs.

Two deployments make one Serve application:

- `UpliftModels` (`ModelReplica`): N replicas, each loading the configured backends once
  at start-up and keeping them warm. Ray places them (`num_cpus` / `num_gpus` per replica),
  routes jobs to them, caps each at `max_ongoing_requests`, queues at most
  `max_queued_requests` more, restarts a replica whose process dies, and autoscales between
  `--min-replicas` and `--max-replicas`. We write no balancer or scheduler of our own.
- `UpliftIngress`: one light replica running `server.create_app` — the very app plain
  uvicorn runs, so token, upload limits, decoding, error bodies and the busy answer are
  one code path — with a `RayRunner` that sends each decoded job to `UpliftModels`.
  Ray's back-pressure error becomes the embedded host's 503 + Retry-After; a job whose
  replica died is sent once more to another replica (segment, lift and inpaint are pure).

Ray is imported only here, and only when `uplift serve --ray` (or a test) asks for it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import time
from dataclasses import dataclass

from ..core.errors import BackendFailedError, ConfigError, UpliftError
from .config import MODEL_PATHS, RayConfig, ServerConfig
from .local import LocalServices
from .server import JobClock, JobTimeout, ServerBusy, create_app, run_job

APP_NAME = "uplift"
MODELS_DEPLOYMENT = "UpliftModels"
INGRESS_DEPLOYMENT = "UpliftIngress"
# The ingress admits every HTTP request; the models deployment's own limits decide who waits and who gets a 503.
INGRESS_MAX_ONGOING = 10_000
# Marks an UpliftError raised while a replica loads its backends, so start-up can print it on one line.
START_ERROR = "uplift-start-error: "
DEATH_RETRIES = 1   # a job whose replica died runs once more elsewhere; a job that kills twice is refused


def _limit_threads(threads: int) -> None:
    """Hold a replica to its CPU share (torch and OpenCV otherwise take every core)."""
    import cv2

    cv2.setNumThreads(threads)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _outcome(services: LocalServices, job: str, args: tuple):
    """Run a job in a replica -> ('ok', (result, worker)) or ('error', UpliftError class | None, message).
    Errors travel as plain values: a raised exception would reach the ingress wrapped in Ray's traceback."""
    try:
        return "ok", run_job(services, job, args)
    except UpliftError as exc:
        return "error", type(exc), str(exc)
    except Exception as exc:  # not a backend failure (those are contained): still one line, no traceback
        return "error", None, f"internal error: {type(exc).__name__}: {_first_line(exc)}"


class ModelReplica:
    """One Ray Serve replica of the models: backends loaded once, at start-up."""

    def __init__(self, config: ServerConfig, threads: int, backends: dict | None = None) -> None:
        _limit_threads(threads)
        try:
            self.services = LocalServices(config, **(backends or {}))
            self.services.load_all()
        except UpliftError as exc:
            raise RuntimeError(f"{START_ERROR}{exc}") from None

    async def run(self, job: str, args: tuple):
        # The job keeps this replica's slot until its thread really ends, even if the caller gave up
        # (a thread cannot be killed, and a second GPU job beside it is what max_ongoing_requests avoids).
        task = asyncio.ensure_future(asyncio.to_thread(_outcome, self.services, job, args))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await task
            raise

    def loaded(self) -> dict:
        return self.services.loaded()


class RayRunner:
    """`create_app`'s runner under Ray: jobs go to the `UpliftModels` replicas through a handle."""

    kind = "ray"

    def __init__(self, models, config: ServerConfig, ray_config: RayConfig, loaded: dict) -> None:
        self.models = models
        self.config = config
        self.ray_config = ray_config
        self._loaded = loaded
        self.clock = JobClock()
        self.in_flight = 0
        self.replicas = ray_config.replicas   # refreshed by host()

    async def run(self, job: str, *args):
        from ray.exceptions import RayActorError, RayError
        from ray.serve.exceptions import BackPressureError, RayServeException

        deadline = time.monotonic() + self.config.request_timeout_s
        for attempt in range(DEATH_RETRIES + 1):
            response = None
            start = time.monotonic()
            self.in_flight += 1
            try:
                response = self.models.run.remote(job, args)
                outcome = await asyncio.wait_for(response, timeout=max(0.0, deadline - time.monotonic()))
            except BackPressureError:
                raise ServerBusy(self.clock.retry_after(self._waiting(), self.replicas), self._load()) from None
            except asyncio.TimeoutError:
                if response is not None:
                    response.cancel()
                raise JobTimeout(f"the job did not finish within the server's limit of "
                                 f"{self.config.request_timeout_s:g} s") from None
            except RayActorError:
                if attempt < DEATH_RETRIES:
                    continue   # the replica's process died mid-job: Ray restarts it, another replica retries the job
                raise BackendFailedError("the replicas running this job stopped twice (their processes died); "
                                         "the server keeps serving, but this input may be what kills them") from None
            except (RayServeException, RayError) as exc:
                raise BackendFailedError(f"Ray could not run the job: {type(exc).__name__}: {_first_line(exc)}") from None
            finally:
                self.in_flight -= 1
            self.clock.record(time.monotonic() - start)
            if outcome[0] == "ok":
                return outcome[1]
            _, cls, message = outcome
            raise (cls or BackendFailedError)(message)

    def _waiting(self) -> int:
        return max(0, self.in_flight - self.replicas * self.ray_config.max_ongoing)

    def _load(self) -> str:
        return (f"{self.replicas} replicas x {self.ray_config.max_ongoing} running, {self._waiting()} waiting, "
                f"queue of {self.config.queue_size}")

    def loaded(self) -> dict:
        return self._loaded

    def queue(self) -> dict:
        running = min(self.in_flight, self.replicas * self.ray_config.max_ongoing)
        return {"running": running, "waiting": self.in_flight - running, "size": self.config.queue_size}

    async def host(self) -> dict:
        states = await asyncio.to_thread(replica_states)
        self.replicas = max(1, states.get("RUNNING", 0))
        rc = self.ray_config
        return {"kind": self.kind, "replicas": states.get("RUNNING", 0), "replica_states": states,
                "max_ongoing_requests": rc.max_ongoing, "cpus_per_replica": rc.cpus_per_replica,
                "gpus_per_replica": rc.gpus_per_replica,
                "autoscaling": {"min_replicas": rc.min_replicas, "max_replicas": rc.max_replicas}
                if rc.autoscaling else None,
                "cluster": rc.address or "local"}


def replica_states() -> dict[str, int]:
    """{'RUNNING': n, 'STARTING': m, ...} of the models deployment, from the Serve controller."""
    from ray import serve

    app = serve.status().applications.get(APP_NAME)
    deployment = app.deployments.get(MODELS_DEPLOYMENT) if app else None
    return {str(getattr(k, "value", k)): int(v) for k, v in (deployment.replica_states if deployment else {}).items()}


class UpliftIngress:
    """The ingress replica: builds `create_app` around a `RayRunner` once the models answer."""

    def __init__(self, models, config: ServerConfig, ray_config: RayConfig) -> None:
        self.models = models
        self.config = config
        self.ray_config = ray_config

    async def __serve_build_asgi_app__(self):
        loaded = await self.models.loaded.remote()
        return create_app(self.config, runner=RayRunner(self.models, self.config, self.ray_config, loaded))


def replica_config(config: ServerConfig, ray_config: RayConfig) -> ServerConfig:
    """Replicas without a GPU of their own run on the CPU (Ray reserves no GPU for them)."""
    if ray_config.gpus_per_replica == 0 and config.device == "auto":
        return dataclasses.replace(config, device="cpu")
    return config


def build_application(config: ServerConfig, ray_config: RayConfig, backends: dict | None = None):
    """The bound Serve application. `backends` (tests) are ready backend objects for every replica."""
    from ray import serve

    if config.queue_size < 1:
        raise ConfigError("under --ray the queue size must be >= 1 (Ray Serve's max_queued_requests)")
    threads = ray_config.threads
    scale = ({"autoscaling_config": {"min_replicas": ray_config.min_replicas, "max_replicas": ray_config.max_replicas,
                                     "initial_replicas": ray_config.replicas,
                                     "target_ongoing_requests": ray_config.max_ongoing}}
             if ray_config.autoscaling else {"num_replicas": ray_config.replicas})
    env = {name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    models = serve.deployment(ModelReplica).options(
        name=MODELS_DEPLOYMENT, max_ongoing_requests=ray_config.max_ongoing, max_queued_requests=config.queue_size,
        ray_actor_options={"num_cpus": ray_config.cpus_per_replica, "num_gpus": ray_config.gpus_per_replica,
                           "runtime_env": {"env_vars": env}},
        graceful_shutdown_timeout_s=5, **scale)
    per_replica = replica_config(config, ray_config)
    ingress = serve.deployment(serve.ingress()(UpliftIngress)).options(
        name=INGRESS_DEPLOYMENT, num_replicas=1, max_ongoing_requests=INGRESS_MAX_ONGOING,
        ray_actor_options={"num_cpus": 0})
    return ingress.bind(models.bind(per_replica, threads, backends), per_replica, ray_config)


@dataclass
class RayHost:
    """A running `uplift` Serve application: `url`, then `stop()`."""
    url: str
    started_ray: bool   # True: this process started the local Ray instance and stops it

    def stop(self) -> None:
        import ray
        from ray import serve

        try:
            if self.started_ray:
                serve.shutdown()
            else:
                serve.delete(APP_NAME)
        finally:
            if self.started_ray:
                ray.shutdown()


def _init_ray(ray_config: RayConfig) -> bool:
    """Connect to the cluster or start a local instance -> whether we started it."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    if ray.is_initialized():
        return False
    try:
        if ray_config.address:
            ray.init(address=ray_config.address, log_to_driver=True, logging_level="warning")
            return False
        ray.init(address="local", include_dashboard=False, object_store_memory=ray_config.object_store_mb * 2**20,
                 log_to_driver=True, logging_level="warning")
        return True
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"join the Ray cluster at {ray_config.address}" if ray_config.address else "start a local Ray instance"
        raise ConfigError(f"cannot {where}: {_first_line(exc)}") from None


def _check_resources(ray_config: RayConfig, strict: bool) -> None:
    """Refuse replicas the cluster can never place, instead of waiting for them forever."""
    import sys

    import ray

    have = ray.cluster_resources()
    count = ray_config.min_replicas if ray_config.autoscaling else ray_config.replicas
    count = max(count, 1)
    for resource, each, flag in (("CPU", ray_config.cpus_per_replica, "--cpus-per-replica"),
                                 ("GPU", ray_config.gpus_per_replica, "--gpus-per-replica")):
        need = count * each
        if need > have.get(resource, 0) + 1e-9:
            text = (f"the Ray cluster has {have.get(resource, 0):g} {resource}s but {count} replicas x {each:g} "
                    f"({flag}) need {need:g}; lower --replicas or {flag}")
            if strict:
                raise ConfigError(text)
            print(f"uplift serve: warning: {text} (waiting for the cluster to grow)", file=sys.stderr)


def _check_model_paths(config: ServerConfig) -> None:
    """A local instance's replicas read the weights on this machine: a missing path is
    refused now, not after Ray has started and retried every replica."""
    for backend, (kind, field, _hint) in MODEL_PATHS.items():
        if getattr(config, kind) == backend and not getattr(config, field).exists():
            flag = "--" + field.replace("_", "-")
            raise ConfigError(f"the {backend} {kind} backend's {flag} {getattr(config, field)} does not exist")


def _start_failure(app_status) -> str:
    texts = [app_status.message or ""] + [d.message or "" for d in app_status.deployments.values()]
    for text in texts:
        found = re.search(re.escape(START_ERROR) + r"([^\n]*)", text)
        if found:
            return found.group(1).strip().rstrip("'\"")
    text = next((t for t in texts if t.strip()), "no reason given")
    return _first_line(Exception(text))


def start_ray_host(config: ServerConfig, ray_config: RayConfig, backends: dict | None = None) -> RayHost:
    """Deploy the app on Ray Serve at config.host:config.port and wait until every replica
    has loaded its backends. Raises ConfigError with one line if it cannot."""
    build_application(config, ray_config, backends)   # refuse bad settings before starting Ray
    if not ray_config.address and not backends:
        _check_model_paths(config)
    started = _init_ray(ray_config)
    try:
        _check_resources(ray_config, strict=started)
        deploy(config, ray_config, backends, local=started)
    except BaseException:
        RayHost("", started).stop()
        raise
    host = f"[{config.host}]" if ":" in config.host else config.host
    return RayHost(f"http://{host}:{config.port}", started)


def _proxy_routes_to_uplift(config: ServerConfig) -> bool:
    """True once this machine's Serve proxy hands /v1/health to our app: its route table follows
    the controller a moment after the app reports RUNNING, and meanwhile answers 404 itself."""
    import http.client

    from . import protocol as P

    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host.strip("[]")
    conn = http.client.HTTPConnection(host, config.port, timeout=5)
    try:
        conn.request("GET", P.HEALTH_PATH)
        return conn.getresponse().getheader(P.SERVICE_HEADER) == P.SERVICE_NAME   # a 401 counts: it is ours
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def deploy(config: ServerConfig, ray_config: RayConfig, backends: dict | None = None, *, local: bool = True) -> None:
    """(Re)deploy the application on the connected Ray and wait until it runs; a new replica
    count on a running app only adds or removes replicas (the bench compares 1 and 2 so)."""
    from ray import serve
    from ray.serve.api import _run

    serve.start(http_options={"host": config.host, "port": config.port},
                proxy_location="HeadOnly" if local else "EveryNode", logging_config={"log_level": "WARNING"})
    _run(build_application(config, ray_config, backends), name=APP_NAME, route_prefix="/", _blocking=False,
         logging_config={"enable_access_log": False, "log_level": "WARNING"})
    deadline = time.monotonic() + ray_config.start_timeout_s
    while True:
        status = serve.status().applications.get(APP_NAME)
        state = str(getattr(status.status, "value", status.status)) if status else "NOT_STARTED"
        running = replica_states().get("RUNNING", 0) if status else 0
        if state == "RUNNING" and (ray_config.autoscaling or running == ray_config.replicas) and \
                (not local or _proxy_routes_to_uplift(config)):
            return
        if state in ("DEPLOY_FAILED", "UNHEALTHY"):
            raise ConfigError(f"the Uplift replicas did not start: {_start_failure(status)}")
        if time.monotonic() > deadline:
            detail = _start_failure(status) if status else "no status"
            raise ConfigError(f"the Uplift replicas did not start within {ray_config.start_timeout_s:g} s "
                              f"({detail})")
        time.sleep(0.2)


def serve_ray(config: ServerConfig, ray_config: RayConfig, on_ready=None) -> None:
    """Blocking: deploy, call `on_ready(url)`, serve until Ctrl-C or SIGTERM, then take it all down."""
    import signal
    import threading

    from .server import check_port_free

    if not ray_config.address:
        check_port_free(config.host, config.port)
    host = start_ray_host(config, ray_config)
    stop = threading.Event()
    # After ray.init, whose crash handler would otherwise turn SIGTERM into an abort with stray Ray processes.
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if on_ready is not None:
            on_ready(host.url)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        host.stop()
