"""The image service's default policy rules: Glance's secure-RBAC defaults, by Glance's names.

Targets are what Glance passes: for an image, ``project_id`` (its owner), ``owner``,
``visibility`` and, when the caller's project is a member of the image, ``member_id``.
An operator's Glance policy file applies unchanged.
"""

from __future__ import annotations

PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
IMAGE_MEMBER_CHECK = "project_id:%(member_id)s"
COMMUNITY = "'community':%(visibility)s"
PUBLIC = "'public':%(visibility)s"
SHARED = "'shared':%(visibility)s"
_VISIBLE = f"(project_id:%(project_id)s or {IMAGE_MEMBER_CHECK} or {COMMUNITY} or {PUBLIC} or {SHARED})"
ADMIN = "rule:context_is_admin"
ADMIN_OR_PROJECT_MEMBER = f"{ADMIN} or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER = f"{ADMIN} or ({PROJECT_READER})"
ADMIN_OR_PROJECT_READER_GET_IMAGE = f"{ADMIN} or (role:reader and {_VISIBLE})"
ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE = f"{ADMIN} or (role:member and {_VISIBLE})"
ADMIN_OR_PROJECT_MEMBER_CREATE_IMAGE = f"{ADMIN} or ({PROJECT_MEMBER} and project_id:%(owner)s)"
ADMIN_OR_SHARED_MEMBER = f"{ADMIN} or (role:member and {IMAGE_MEMBER_CHECK})"
ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER = (
    f"{ADMIN} or role:reader and (project_id:%(project_id)s or {IMAGE_MEMBER_CHECK})")
ADMIN_OR_PROJECT_READER_GET_NAMESPACE = f"{ADMIN} or (role:reader and (project_id:%(project_id)s or {PUBLIC}))"
METADEF_ADMIN = "rule:metadef_admin"
SERVICE = "rule:service_api"
SERVICE_OR_PROJECT_MEMBER = f"{SERVICE} or ({PROJECT_MEMBER} and project_id:%(owner)s)"

RULES: dict[str, str] = {
    "default": "",
    "context_is_admin": "role:admin",
    "service_api": "role:service or role:admin",
    "add_image": ADMIN_OR_PROJECT_MEMBER_CREATE_IMAGE,
    "delete_image": ADMIN_OR_PROJECT_MEMBER,
    "get_image": ADMIN_OR_PROJECT_READER_GET_IMAGE,
    "get_images": ADMIN_OR_PROJECT_READER,
    "modify_image": ADMIN_OR_PROJECT_MEMBER,
    "publicize_image": ADMIN,
    "communitize_image": ADMIN_OR_PROJECT_MEMBER,
    "download_image": ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE,
    "download_from_store": ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE,
    "upload_image": ADMIN_OR_PROJECT_MEMBER,
    "delete_image_location": ADMIN,
    "get_image_location": ADMIN_OR_PROJECT_READER,
    "set_image_location": ADMIN_OR_PROJECT_MEMBER,
    "add_image_location": SERVICE_OR_PROJECT_MEMBER,
    "fetch_image_location": SERVICE,
    "add_member": ADMIN_OR_PROJECT_MEMBER,
    "delete_member": ADMIN_OR_PROJECT_MEMBER,
    "get_member": ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER,
    "get_members": ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER,
    "modify_member": ADMIN_OR_SHARED_MEMBER,
    "manage_image_cache": ADMIN,
    "deactivate": ADMIN_OR_PROJECT_MEMBER,
    "reactivate": ADMIN_OR_PROJECT_MEMBER,
    "copy_image": ADMIN,
    "stores_info_detail": f"{ADMIN} or {SERVICE}",
    "get_task": "rule:default",
    "get_tasks": "rule:default",
    "add_task": "rule:default",
    "modify_task": "rule:default",
    "tasks_api_access": ADMIN,
    "metadef_default": "",
    "metadef_admin": ADMIN,
    "get_metadef_namespace": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "get_metadef_namespaces": ADMIN_OR_PROJECT_READER,
    "modify_metadef_namespace": METADEF_ADMIN,
    "add_metadef_namespace": METADEF_ADMIN,
    "delete_metadef_namespace": METADEF_ADMIN,
    "get_metadef_object": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "get_metadef_objects": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "modify_metadef_object": METADEF_ADMIN,
    "add_metadef_object": METADEF_ADMIN,
    "delete_metadef_object": METADEF_ADMIN,
    "list_metadef_resource_types": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "get_metadef_resource_type": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "add_metadef_resource_type_association": METADEF_ADMIN,
    "remove_metadef_resource_type_association": METADEF_ADMIN,
    "get_metadef_property": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "get_metadef_properties": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "modify_metadef_property": METADEF_ADMIN,
    "add_metadef_property": METADEF_ADMIN,
    "remove_metadef_property": METADEF_ADMIN,
    "get_metadef_tag": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "get_metadef_tags": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "modify_metadef_tag": METADEF_ADMIN,
    "add_metadef_tag": METADEF_ADMIN,
    "add_metadef_tags": METADEF_ADMIN,
    "delete_metadef_tag": METADEF_ADMIN,
    "delete_metadef_tags": METADEF_ADMIN,
}
