"""moto server, with two behaviours of ELBv2 that moto 5.2.5 lacks, as the API reference
documents them (the listener sync relies on both when two processes sync at once):

- CreateListener: "If you attempt to create multiple listeners with the same settings, each
  call succeeds" (the existing listener is returned); a listener on the same port with other
  settings is refused with DuplicateListener. moto looks the port up among the listeners'
  ARNs, so it never refuses, and a load balancer ends up with two listeners on one port.
- CreateTargetGroup: "If you attempt to create multiple target groups with the same settings,
  each call succeeds" (the existing one is returned). moto refuses every second call with
  DuplicateTargetGroupName.

The test bed runs this instead of `moto_server`; the conformance test in
tests/e2e/tests/listeners.rs checks both behaviours through the SDK.
"""

import sys

from moto.elbv2 import models
from moto.elbv2.exceptions import DuplicateListenerError
from moto.server import main

_create_listener = models.ELBv2Backend.create_listener
_create_target_group = models.ELBv2Backend.create_target_group


def _forwards_to(actions):
    """The target groups a list of actions (as the API gives them) forwards to."""
    found = []
    for action in actions or []:
        data = action.data if hasattr(action, "data") else action
        if data.get("TargetGroupArn"):
            found.append(data["TargetGroupArn"])
        for group in (data.get("ForwardConfig") or {}).get("TargetGroups") or []:
            found.append(group.get("TargetGroupArn"))
    return found


def create_listener(self, load_balancer_arn, protocol, port, ssl_policy, certificate, actions, *args, **kwargs):
    balancer = self.load_balancers.get(load_balancer_arn)
    if balancer is not None:
        for listener in balancer.listeners.values():
            if str(listener.port) != str(port):
                continue
            same = (
                listener.protocol == (protocol or "").upper()
                and (listener.certificate or None) == (certificate or None)
                and _forwards_to(listener.default_actions) == _forwards_to(actions)
            )
            if same:
                return listener
            raise DuplicateListenerError()
    return _create_listener(self, load_balancer_arn, protocol, port, ssl_policy, certificate, actions, *args, **kwargs)


def create_target_group(self, name, **kwargs):
    for group in self.target_groups.values():
        if group.name != name:
            continue
        same = (
            (group.protocol or "") == (kwargs.get("protocol") or "")
            and str(group.port) == str(kwargs.get("port"))
            and (group.vpc_id or "") == (kwargs.get("vpc_id") or "")
        )
        if same:
            return group
        break
    return _create_target_group(self, name, **kwargs)


models.ELBv2Backend.create_listener = create_listener
models.ELBv2Backend.create_target_group = create_target_group

if __name__ == "__main__":
    main(sys.argv[1:])
