"""Membership over time, once per deployment: a member who leaves a workspace loses every way in.

The service checks membership at the door (a start, a request). This checks it as time goes by,
for every active workspace server (running or pending), every ``membership_check_interval``:

- the owner has left the server's workspace: after ``leaver_grace`` the server is stopped (not
  removed: its name and options stay, so a member who is added back starts it again), its
  shares are removed, and so are the leaver's shares of others' servers in that workspace;
- a recipient of a share has left: the share goes; a kept workspace group loses them.

Only a definite "left" takes anything away: a check the Hub or the identity provider cannot
answer changes nothing and is tried again next time (``workspaces.Membership``).

It runs as its own process, ``notebooks-service reconcile``, one per deployment: a Hub-managed
service in the Hub's pod, as z2jh runs jupyterhub-idle-culler (its model: one process, every
Hub call bounded, paging done once), never in the service's replicas, which would each edit
shares and groups from their own snapshot. docs/security.rst says why and what a leaver keeps.
"""

import asyncio
import signal
import time
from typing import Any

from tornado import web
from traitlets import Float, Integer, validate
from traitlets.config import LoggingConfigurable

from .app import NotebooksService
from .errors import ServiceError
from .hub import HubClient
from .hubusers import ActiveServers
from .metrics import SERVERS_STOPPED_FOR_LEAVING
from .naming import server_name
from .routes import metrics_port_routes
from .sharing import Directory, Sharing


def leaver_stop_bound(config) -> float:
    """The longest a leaver's server runs on once they have left: the reconciler's interval and
    grace, as the deployment's configuration sets them (the service's pages say it)."""
    settings = Reconciler(config=config, hub=None, sharing=None)
    return settings.membership_check_interval + settings.leaver_grace


class Reconciler(LoggingConfigurable):
    """Checks every active workspace server's owner and share recipients, and acts on leavers."""

    membership_check_interval = Float(
        60,
        help="""Seconds between two checks of every active server: a member removed from a
        workspace loses their servers there (after ``leaver_grace``) and what was shared with
        them there by the next check. The demo checks every 10 s.""",
    ).tag(config=True)
    leaver_grace = Float(
        0,
        help="""Seconds a leaver's server keeps running after a check first finds its owner gone
        from its workspace (the service refuses every action on it but Stop meanwhile).""",
    ).tag(config=True)
    concurrency = Integer(10, help="Hub calls this makes at once at most (the idle culler's --concurrency).").tag(
        config=True
    )
    metrics_port = Integer(
        0,
        help="""Serve this process's counters (membership checks by outcome, servers stopped and
        shares removed for leaving) at http://<NotebooksService.metrics_ip>:<port>/metrics for
        in-cluster scrapers; 0: not served.""",
    ).tag(config=True)

    @validate("membership_check_interval", "concurrency")
    def _positive(self, proposal):
        if proposal.value <= 0:
            raise ValueError(f"Reconciler.{proposal.trait.name} must be more than 0")
        return proposal.value

    @validate("leaver_grace")
    def _not_negative(self, proposal):
        if proposal.value < 0:
            raise ValueError("Reconciler.leaver_grace must be 0 or more seconds")
        return proposal.value

    def __init__(self, *, hub: HubClient, sharing: Sharing, **kwargs: Any):
        super().__init__(**kwargs)
        self.hub = hub
        self.sharing = sharing
        self.active = ActiveServers(hub)
        self._left_since: dict[tuple[str, str], float] = {}  # (owner, server) -> first found gone

    async def run(self, stop: asyncio.Event) -> None:
        """Check at once, then every interval, until ``stop``."""
        while not stop.is_set():
            try:
                await self.check_once()
            except ServiceError as e:  # the Hub did not answer the listing: next time
                self.log.warning("Could not check the active servers: %s", e.message)
            except Exception:  # a bug must not stop the checks for good (nor restart-loop the service)
                self.log.exception("The membership check failed; trying again next interval")
            try:
                await asyncio.wait_for(stop.wait(), self.membership_check_interval)
            except asyncio.TimeoutError:
                pass

    async def check_once(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)

        async def bounded(coroutine):
            async with slots:
                return await coroutine

        # the owners' models come with the listing: their membership costs no call of its own
        active, models = await self.active.with_models(fresh=True)
        owners = sorted({(s.user, s.workspace) for s in active})
        listed = Directory(self.sharing, models)
        asked = [bounded(listed.membership(user, workspace)) for user, workspace in owners]
        verdicts = dict(zip(owners, await asyncio.gather(*asked), strict=True))
        now, gone = time.monotonic(), set()
        for server in active:
            verdict = verdicts[(server.user, server.workspace)]
            if not verdict.left:
                continue
            key = (server.user, server_name(server.workspace, server.image))
            gone.add(key)
            since = self._left_since.setdefault(key, now)
            if now - since >= self.leaver_grace:
                await self._quietly(self.stop_leavers_server(server.user, server.workspace, key[1], verdict.reason))
        self._left_since = {k: t for k, t in self._left_since.items() if k in gone}
        # the recipients of the shares of the servers whose owners stay, and the kept groups
        staying = sorted({s.user for s in active if not verdicts[(s.user, s.workspace)].left})
        await asyncio.gather(*(bounded(self._quietly(self.sharing.reconcile_owner(o))) for o in staying))
        if self.sharing.manage_workspace_groups:
            directory = Directory(self.sharing)  # every user, read once if needed, for every workspace
            for workspace in sorted({s.workspace for s in active}):
                await self._quietly(self.sharing.keep_group(workspace, directory=directory))

    async def stop_leavers_server(self, owner: str, workspace: str, name: str, reason: str) -> None:
        """Stop (not remove) ``owner``'s server ``name``: its shares go, and the owner's in the workspace."""
        self.log.warning(
            "Stopping %s's server %s: no member of workspace %s now (%s); its shares go too",
            owner,
            name,
            workspace,
            reason,
        )
        await self.sharing.hub_shares.revoke_all(owner, name)
        await self.sharing.revoke_received(owner, workspace)
        await self.hub.stop_server(owner, name, remove=False)
        SERVERS_STOPPED_FOR_LEAVING.inc()

    async def _quietly(self, coroutine) -> None:
        try:
            await coroutine
        except ServiceError as e:
            self.log.warning("A membership check could not finish (next time): %s", e.message)


class ReconcilerApp(NotebooksService):
    """``notebooks-service reconcile --config <the service's config file>``: the Reconciler's process.

    It reads the service's own configuration (policy, sharing, Hub client), so both agree on who
    is a member, and runs as a Hub-managed service with a role of its own (docs/deploying.rst).
    """

    name = "notebooks-service-reconcile"
    description = "Check every active workspace server's members over time (one process per deployment)."
    subcommands = {}

    async def _serve(self) -> None:
        hub = HubClient(parent=self, api_url=self.hub_api_url, api_token=self.hub_api_token)
        sharing = Sharing(parent=self, hub=hub, policy=self.make_policy())
        reconciler = Reconciler(parent=self, hub=hub, sharing=sharing)
        if "share_reconcile_interval" in self.config.NotebooksService and not self.config.Reconciler.get(
            "membership_check_interval"
        ):
            self.log.warning(
                "NotebooksService.share_reconcile_interval is deprecated: set Reconciler.membership_check_interval"
            )
            reconciler.membership_check_interval = self.config.NotebooksService.share_reconcile_interval
        self.log.info(
            "Checking every active workspace server's members every %.0fs (grace %.0fs) through %s",
            reconciler.membership_check_interval,
            reconciler.leaver_grace,
            self.hub_api_url,
        )
        metrics_server = None
        if reconciler.metrics_port:
            metrics_server = web.Application(metrics_port_routes()).listen(reconciler.metrics_port, self.metrics_ip)
            self.log.info("Metrics on http://%s:%i/metrics", self.metrics_ip, reconciler.metrics_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        checking = asyncio.ensure_future(reconciler.run(stop))
        await stop.wait()
        checking.cancel()  # a check in progress is not waited for: the next process starts afresh
        try:
            await checking
        except asyncio.CancelledError:
            pass
        if metrics_server is not None:
            metrics_server.stop()
        hub.close()
        self.log.info("Stopped")
