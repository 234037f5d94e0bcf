"""Selection and Project agents: members of static selections and projects."""

from __future__ import annotations

from typing import Any

from ..types import Member, MemberPage
from . import queries
from .archive import as_datetime


def member_of(row: dict[str, Any], fields: dict[str, str]) -> Member:
    """A Member from an archive row, its fields read from the query's columns."""
    value = {name: row.get(column) for name, column in fields.items()}
    return Member(
        person_id=value["person_id"] or 0,
        company_id=value["company_id"] or None,
        email=value["email"] or "",
        first_name=value["first_name"] or "",
        last_name=value["last_name"] or "",
        member_id=value.get("member_id") or None,
        title=value["title"] or "",
        phone=value["phone"] or "",
        mobile=value["mobile"] or "",
        company_name=value["company_name"] or "",
        registered_at=as_datetime(value["registered_at"]),
        no_mailing=value["no_mailing"] is True,
        has_emarketing_consent=value["has_emarketing_consent"] is True,
    )


class MemberOperations:
    """Selection.* and Project.* operations and the member archives."""

    def _company_of(self, person_id: int, company_id: int | None) -> int:
        if company_id:
            return company_id
        return self.get_person(person_id=person_id).company_id or 0

    def selection_add_person(
        self, *, selection_id: int, person_id: int, company_id: int | None = None
    ) -> None:
        """Selection.AddContactSelectionMembers (person and the company it belongs to)."""
        pair = {"PersonId": person_id, "ContactId": self._company_of(person_id, company_id)}
        self._call(
            "Selection",
            "AddContactSelectionMembers",
            SelectionId=selection_id,
            ContactPersonIds={"ContactPersonId": [pair]},
        )

    def selection_remove_person(
        self, *, selection_id: int, person_id: int, company_id: int | None = None
    ) -> None:
        """Selection.RemoveContactSelectionMembers."""
        pair = {"PersonId": person_id, "ContactId": self._company_of(person_id, company_id)}
        self._call(
            "Selection",
            "RemoveContactSelectionMembers",
            SelectionId=selection_id,
            ContactPersonIds={"ContactPersonId": [pair]},
        )

    def selection_members(
        self, *, selection_id: int, page: int = 0, page_size: int = 200
    ) -> MemberPage:
        """Archive.GetArchiveListByColumns, provider ContactPersonStaticSelectionV2, entity
        staticPerson, restriction selectionId, ordered by personId (cheap paging). Each
        member carries what an import maps, so no call per person is needed."""
        query = queries.SELECTION_MEMBERS
        rows = self._query(query, {"selectionId": selection_id}, page=page, page_size=page_size)
        return MemberPage(
            members=tuple(member_of(row, query.member_fields) for _, row in rows),
            page=page,
            page_size=page_size,
        )

    def selection_member_count(self, *, selection_id: int) -> int:
        """Archive.GetArchiveListByColumns as ``selection_members``, personId column only."""
        return self._query_count(queries.SELECTION_MEMBER_COUNT, {"selectionId": selection_id})

    def project_member_count(self, *, project_id: int) -> int:
        """Archive.GetArchiveListByColumns as ``project_members``, projectMemberId only."""
        return self._query_count(queries.PROJECT_MEMBER_COUNT, {"projectId": project_id})

    def selection_has_person(self, *, selection_id: int, person_id: int) -> bool:
        """Archive.GetArchiveListByColumns as ``selection_members`` plus personId = N."""
        rows = self._query(
            queries.SELECTION_HAS_PERSON,
            {"selectionId": selection_id, "personId": person_id},
            page=0,
            page_size=1,
        )
        return bool(rows)

    def project_add_person(
        self, *, project_id: int, person_id: int, company_id: int | None = None
    ) -> None:
        """Project.AddProjectMembers."""
        member = {
            "ProjectmemberId": 0,
            "ContactId": self._company_of(person_id, company_id),
            "ProjectId": project_id,
            "PersonId": person_id,
        }
        self._call(
            "Project",
            "AddProjectMembers",
            ProjectEntityId=project_id,
            ProjectMembers={"ProjectMember": [member]},
        )

    def _project_member_ids(self, *, project_id: int, person_id: int) -> list[int]:
        rows = self._query(
            queries.PROJECT_MEMBER_IDS,
            {"projectId": project_id, "personId": person_id},
            page=0,
            page_size=50,
        )
        return [row["projectMemberId"] or key for key, row in rows]

    def project_has_person(self, *, project_id: int, person_id: int) -> bool:
        """Archive.GetArchiveListByColumns, provider ProjectMember, projectId and personId."""
        return bool(self._project_member_ids(project_id=project_id, person_id=person_id))

    def project_remove_person(self, *, project_id: int, person_id: int) -> bool:
        """Archive (find the project member rows) + Project.DeleteProjectMemberByIds.
        False when the person was not a member."""
        member_ids = self._project_member_ids(project_id=project_id, person_id=person_id)
        if not member_ids:
            return False
        self._call("Project", "DeleteProjectMemberByIds", ProjectMemberIds={"int": member_ids})
        return True

    def project_members(
        self, *, project_id: int, page: int = 0, page_size: int = 200
    ) -> MemberPage:
        """Archive.GetArchiveListByColumns, provider ProjectMember, restriction projectId;
        the person's fields under person/, the company's name as contact/name."""
        query = queries.PROJECT_MEMBERS
        rows = self._query(query, {"projectId": project_id}, page=page, page_size=page_size)
        return MemberPage(
            members=tuple(member_of(row, query.member_fields) for _, row in rows),
            page=page,
            page_size=page_size,
        )
