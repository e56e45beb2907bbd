"""What one Umbraco checkout serves: every Management API endpoint with the authorization
ASP.NET Core applies to it, read from the controllers.

Rules (each mirrors ASP.NET Core or Umbraco; the file that says so is named):
- Controllers: public, non-abstract classes under `src/Umbraco.Cms.Api.Management/Controllers/**`.
  Actions: their public, non-static methods (inherited ones too) carrying `[Http*]`; `[NonAction]`
  excluded (aspnetcore `DefaultApplicationModelProvider.IsAction`).
- Route: the most derived class that carries a route attribute wins
  (`DefaultApplicationModelProvider.CreateControllerModel`); the action's template is appended.
  `[VersionedApiBackOfficeRoute(t)]` = `/umbraco/management/api/v{version}/t`
  (`Routing/VersionedApiBackOfficeRouteAttribute.cs`, `Constants.Web.ManagementApiPath`).
- API version: the action's `[MapToApiVersion]`, else the class's `[ApiVersion]`, else 1.0.
- Authorization: every `[Authorize(Policy = …)]` on the action, the class and its base classes
  applies (all must pass); `[AllowAnonymous]` on any of them skips all of them. Policies are
  classified by what `DependencyInjection/BackOfficeAuthPolicyBuilderExtensions.cs` builds.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from .csharp import Class, Constants, CSharpError, Method, parse_file, read_tree

HTTP = {"HttpGet": "GET", "HttpPost": "POST", "HttpPut": "PUT", "HttpDelete": "DELETE", "HttpPatch": "PATCH"}
ROUTE_PREFIX = {"VersionedApiBackOfficeRoute": "/umbraco/management/api/v{version:apiVersion}/"}
RESOURCE_POLICIES = {
    "ContentPermissionByResource": "document",
    "MediaPermissionByResource": "media",
    "ElementPermissionByResource": "element",
    "ElementFolderPermissionByResource": "element-folder",
    "UserPermissionByResource": "user",
    "UserBelongsToUserGroupInRequest": "user-group",
    "DictionaryPermissionByResource": "dictionary",
}


@dataclass
class Policy:
    """What one named authorization policy requires."""

    kind: str  # sections | admin | backoffice | feature | deny-local-login | resource
    sections: list[str] = field(default_factory=list)


@dataclass
class Endpoint:
    method: str
    template: str  # Portcullis syntax: {x:guid}, {x}, {*x}
    controller: str
    action: str
    policy: str  # sections | admin | backoffice | anonymous
    sections: list[str]
    policies: list[str]  # raw policy names, for the report
    allow_anonymous: bool
    authorize_count: int  # [Authorize] attributes on the action and its class chain
    injects_authorization: bool
    decode_params: list[str]
    resource_kinds: set[str]  # from AuthorizeResourceAsync calls in the action
    verbs: set[str]  # ActionX.ActionLetter values used by the action
    hidden: bool  # [ApiExplorerSettings(IgnoreApi = true)]: left out of OpenApi.json
    self_user_check: bool  # authorizes the calling user on itself (UserPermissionResource of CurrentUserKey)
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, openapi_path(self.template))


def openapi_path(template: str) -> str:
    """A template as Umbraco's OpenApi.json spells it: no constraints, no catch-all star."""
    return re.sub(r"\{\*?([A-Za-z0-9_]+)(:[^}]*)?\}", r"{\1}", template)


@dataclass
class Checkout:
    root: str
    version: str  # version.json, e.g. 17.4.2
    endpoints: list[Endpoint]
    problems: list[str]  # what could not be read or mapped
    openapi: dict
    # Whether the OpenAPI filter's "injects IAuthorizationService" test works: 17.4.2 compares
    # `parameter.GetType()` (always ParameterInfo) and so never adds a 403 for it.
    openapi_sees_injection: bool

    @property
    def major(self) -> str:
        return self.version.split(".")[0]


def load(root: str) -> Checkout:
    """Reads the checkout at `root` (the repository root of umbraco/Umbraco-CMS)."""
    with open(os.path.join(root, "version.json"), encoding="utf-8") as f:
        version = json.load(f)["version"]
    src = os.path.join(root, "src")
    mgmt = os.path.join(src, "Umbraco.Cms.Api.Management")
    consts = Constants()
    for project in ("Umbraco.Core", "Umbraco.Cms.Api.Common", "Umbraco.Web.Common", "Umbraco.Cms.Api.Management"):
        for d, dirs, files in os.walk(os.path.join(src, project)):
            dirs.sort()
            for name in sorted(files):
                p = os.path.join(d, name)
                if name.endswith(".cs") and "const " in open(p, encoding="utf-8-sig").read():
                    consts.add(parse_file(p))
    policies = read_policies(os.path.join(mgmt, "DependencyInjection", "BackOfficeAuthPolicyBuilderExtensions.cs"), consts)
    classes = read_tree(os.path.join(mgmt, "Controllers"))
    consts.add(classes)
    problems: list[str] = []
    endpoints = controller_endpoints(classes, consts, policies, problems)
    with open(os.path.join(mgmt, "OpenApi.json"), encoding="utf-8") as f:
        openapi = json.load(f)
    filters = "".join(open(os.path.join(d, n), encoding="utf-8-sig").read()
                      for d, _, files in os.walk(os.path.join(mgmt, "OpenApi")) for n in files if n.endswith(".cs"))
    sees = "ParameterType == typeof(IAuthorizationService)" in filters
    return Checkout(root, version, endpoints, problems, openapi, sees)


def read_policies(path: str, consts: Constants) -> dict[str, Policy]:
    """Policy name → what it requires, from `BackOfficeAuthPolicyBuilderExtensions.cs`."""
    text = open(path, encoding="utf-8-sig").read()
    out: dict[str, Policy] = {}
    for m in re.finditer(r"AddAllowedApplicationsPolicy\(\s*AuthorizationPolicies\.(\w+)\s*,([^;]*?)\);", text, re.S):
        refs = re.findall(r"[A-Za-z_][\w.]*", m.group(2))
        out[m.group(1)] = Policy("sections", [consts.lookup(r, None) for r in refs])
    for m in re.finditer(r"options\.AddPolicy\(\s*AuthorizationPolicies\.(\w+)\s*,(.*?)\n        \}\);", text, re.S):
        body = m.group(2)
        if "new BackOfficeRequirement()" in body:
            kind = "backoffice"
        elif "RequireRole(Constants.Security.AdminGroupAlias)" in body:
            kind = "admin"
        elif "FeatureAuthorizeRequirement" in body:
            kind = "feature"
        elif "DenyLocalLoginRequirement" in body:
            kind = "deny-local-login"
        else:
            kind = "resource"
        out[m.group(1)] = Policy(kind)
    return out


def _chain(cls: Class, by_name: dict[str, Class]) -> list[Class]:
    """The class and its base classes that were read, most derived first."""
    out = [cls]
    while out[-1].bases and out[-1].bases[0] in by_name and len(out) < 20:
        out.append(by_name[out[-1].bases[0]])
    return out


def _attrs(classes: list[Class], name: str):
    return [a for c in classes for a in c.attrs if a.name == name]


def controller_endpoints(classes, consts, policies, problems) -> list[Endpoint]:
    by_name = {c.name: c for c in classes}
    # Base classes are found by simple name: two classes sharing one would make that ambiguous.
    names = [c.name for c in classes]
    for dup in sorted({n for n in names if names.count(n) > 1} & {b for c in classes for b in c.bases[:1]}):
        problems.append(f"base class name `{dup}` is declared twice; its subclasses may be misread")
    out: list[Endpoint] = []
    for cls in classes:
        if "abstract" in cls.modifiers or "public" not in cls.modifiers or cls.outer:
            continue
        chain = _chain(cls, by_name)
        # ASP.NET's controller convention: a name ending in `Controller`, or a [Controller] base.
        if not (cls.name.endswith("Controller") or any(c.name == "ManagementApiControllerBase" for c in chain)):
            continue
        route_cls = next((c for c in chain if any(a.name in ROUTE_PREFIX or a.name == "Route" for a in c.attrs)), None)
        route_attr = route_cls and next(a for a in route_cls.attrs if a.name in ROUTE_PREFIX or a.name == "Route")
        if route_attr is None or route_attr.name not in ROUTE_PREFIX:
            problems.append(f"{cls.name}: no versioned API route attribute; not under the API prefix, skipped")
            continue
        base = ROUTE_PREFIX[route_attr.name] + consts.evaluate(route_attr.args[0], route_cls).strip("/")
        versions = [consts.evaluate(a.args[0], cls) for a in _attrs([cls], "ApiVersion")] or ["1.0"]
        methods = [(c, m) for c in chain for m in c.methods]
        seen: set[tuple[str, str]] = set()
        for owner, m in methods:
            signature = (m.name, " ".join(t.text for t in m.params))
            if signature in seen or "public" not in m.modifiers or "static" in m.modifiers:
                continue
            seen.add(signature)
            if any(a.name == "NonAction" for a in m.attrs):
                continue
            https = [a for a in m.attrs if a.name in HTTP]
            if not https:
                # ASP.NET makes it an action on the controller's own template for ANY method
                # (DefaultApplicationModelProvider.IsAction); not shipped: unmatched is denied.
                problems.append(f"{cls.name}.{m.name}: public method without [Http*] answers any method "
                                f"at the controller's template; not shipped (unmatched requests are denied)")
                continue
            mapped = [consts.evaluate(a.args[0], cls) for a in m.attrs if a.name == "MapToApiVersion"] or versions
            for http in https:
                tail = consts.evaluate(http.args[0], owner) if http.args else ""
                template = base + ("/" + tail if tail else "")
                for v in mapped:
                    out.append(_endpoint(cls, chain, owner, m, HTTP[http.name], template, v, policies, consts, problems))
    return out


def _version_segment(v: str) -> str:
    major, _, minor = v.partition(".")
    return major if minor in ("", "0") else f"{major}.{minor}"


def _portcullis_template(template: str, version: str) -> str:
    t = template.replace("{version:apiVersion}", _version_segment(version))
    # `{x:guid}` keeps its constraint (the matcher has it); other constraints match any segment.
    return re.sub(r"\{(\*?)([A-Za-z0-9_]+)(:([^}]*))?\}",
                  lambda m: "{%s%s%s}" % (m.group(1), m.group(2), ":guid" if m.group(4) == "guid" else ""), t)


def _endpoint(cls, chain, owner, m: Method, method, template, version, policies, consts, problems) -> Endpoint:
    owner_chain = chain[chain.index(owner):]
    attrs = [*m.attrs, *[x for c in owner_chain for x in c.attrs]]
    names = [a.named["Policy"][-1].text if "Policy" in a.named else "(authentication scheme only)"
             for a in attrs if a.name == "Authorize"]
    # The action's own body plus the non-public helpers of its class chain that it calls by
    # name (two levels: `HandleRequest` in a base class calling `AuthorizeAsync`).
    helpers = [h for c in owner_chain for h in c.methods if "public" not in h.modifiers]
    body = m.body
    for _ in range(2):
        body += "".join(h.body for h in helpers if h.body not in body and re.search(rf"\b{h.name}\(", body))
    verbs = set()
    for action in sorted(set(re.findall(r"\b(Action\w+)\.ActionLetter", body))):
        try:
            verbs.add(consts.lookup(f"{action}.ActionLetter", owner))
        except CSharpError as e:
            problems.append(f"{cls.name}.{m.name}: {e}")
    ep = Endpoint(
        method=method,
        template=_portcullis_template(template, version),
        controller=cls.name,
        action=m.name,
        policy="backoffice",
        sections=[],
        policies=names,
        allow_anonymous=any(a.name == "AllowAnonymous" for a in attrs),
        authorize_count=len(names),
        injects_authorization="IAuthorizationService" in owner.ctor_params,
        decode_params=sorted(set(re.findall(r"DecodePath\((\w+)\)", m.body))),
        resource_kinds={RESOURCE_POLICIES[p] for p in re.findall(r"AuthorizationPolicies\.(\w+)", body)
                        if p in RESOURCE_POLICIES},
        verbs=verbs,
        self_user_check=any(re.search(rf"\b{v}\s*=\s*CurrentUserKey\(", body)
                            for v in re.findall(r"UserPermissionResource\.WithKeys\((\w+)\)", body)),
        hidden=any(a.name == "ApiExplorerSettings" and "IgnoreApi" in a.named
                   and a.named["IgnoreApi"][0].text == "true" for a in attrs),
    )
    classify(ep, policies, problems)
    return ep


def classify(ep: Endpoint, policies: dict[str, Policy], problems: list[str]) -> None:
    """Reduces the stacked policies to one Portcullis policy (sets ep.policy/sections/notes)."""
    if ep.allow_anonymous:
        ep.policy = "anonymous"
        return
    kinds = []
    lists = []
    for name in ep.policies:
        p = policies.get(name)
        if p is None:
            problems.append(f"{ep.controller}: unknown policy `{name}`; classified `admin` (fail closed)")
            kinds.append("admin")
            continue
        kinds.append(p.kind)
        if p.kind == "sections":
            lists.append(p.sections)
    if "deny-local-login" in kinds:
        # DenyLocalLoginHandler succeeds the pending BackOfficeRequirement while local login is
        # allowed (Security/Authorization/DenyLocalLogin/DenyLocalLoginHandler.cs).
        ep.policy = "anonymous"
        ep.notes.append("DenyLocalLoginIfConfigured: Umbraco lets it through without a token while local login is allowed")
        return
    if "admin" in kinds:
        ep.policy = "admin"
        return
    if "resource" in kinds:
        problems.append(f"{ep.controller}: resource policy used as an attribute: {ep.policies}")
    if lists:
        lists.sort(key=len)
        smallest = lists[0]
        nested = all(set(smallest) <= set(other) for other in lists[1:])
        if not nested:
            smallest = [s for s in smallest if all(s in o for o in lists[1:])]
            ep.notes.append("stacked section policies are not nested: their intersection is required (stricter)")
        ep.policy = "sections"
        ep.sections = list(smallest)
        return
    ep.policy = "backoffice" if "backoffice" in kinds else "anonymous"
