"""Selection and Project agents: members of static selections and projects."""

from __future__ import annotations

from typing import Any

from ..types import Member, MemberPage
from .archive import restriction


def member_of(row: dict[str, Any], key: int | None = None) -> Member:
    return Member(
        person_id=row.get("personId") or 0,
        company_id=row.get("contactId") or None,
        email=row.get("email/emailAddress") or "",
        first_name=row.get("firstName") or "",
        last_name=row.get("lastName") or "",
        member_id=row.get("projectMemberId") or (key if "projectMemberId" in row else None),
        title=row.get("title") or "",
        phone=row.get("personDirectPhone/formattedNumber") or "",
        mobile=row.get("personMobilePhone/formattedNumber") or "",
        company_name=row.get("name") or "",
        registered_at=row.get("personRegisteredDate") or None,
        no_mailing=row.get("personNoMail") is True,
        has_emarketing_consent=row.get("hasEmarketingConsent") is True,
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

    # Everything an import maps, in the member rows themselves: no call per person.
    # Column names as the person archive providers document them.
    _MEMBER_COLUMNS = [
        "personId",
        "contactId",
        "email/emailAddress",
        "firstName",
        "lastName",
        "title",
        "personDirectPhone/formattedNumber",
        "personMobilePhone/formattedNumber",
        "name",
        "personRegisteredDate",
        "personNoMail",
        "hasEmarketingConsent",
    ]

    def selection_members(
        self, *, selection_id: int, page: int = 0, page_size: int = 200
    ) -> MemberPage:
        """Archive.GetArchiveListByColumns, provider ContactPersonStaticSelectionV2,
        restriction selectionId, ordered by personId (cheap paging)."""
        rows = self._archive(
            provider="ContactPersonStaticSelectionV2",
            columns=self._MEMBER_COLUMNS,
            restrictions=[restriction("selectionId", selection_id)],
            order_by="personId",
            page=page,
            page_size=page_size,
        )
        return MemberPage(
            members=tuple(member_of(row) for _, row in rows), page=page, page_size=page_size
        )

    def selection_member_count(self, *, selection_id: int) -> int:
        """Archive.GetArchiveListByColumns as ``selection_members``, personId column only."""
        return self._archive_count(
            provider="ContactPersonStaticSelectionV2",
            restriction=restriction("selectionId", selection_id),
            key="personId",
        )

    def project_member_count(self, *, project_id: int) -> int:
        """Archive.GetArchiveListByColumns as ``project_members``, projectMemberId only."""
        return self._archive_count(
            provider="ProjectMember",
            restriction=restriction("projectId", project_id),
            key="projectMemberId",
        )

    def selection_has_person(self, *, selection_id: int, person_id: int) -> bool:
        """Archive.GetArchiveListByColumns as ``selection_members`` plus personId = N."""
        rows = self._archive(
            provider="ContactPersonStaticSelectionV2",
            columns=["personId"],
            restrictions=[
                restriction("selectionId", selection_id),
                restriction("personId", person_id),
            ],
            order_by="personId",
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
        rows = self._archive(
            provider="ProjectMember",
            columns=["projectMemberId", "personId"],
            restrictions=[
                restriction("projectId", project_id),
                restriction("personId", person_id),
            ],
            order_by="projectMemberId",
            page=0,
            page_size=50,
        )
        return [row.get("projectMemberId") or key for key, row in rows]

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
        """Archive.GetArchiveListByColumns, provider ProjectMember, restriction projectId."""
        rows = self._archive(
            provider="ProjectMember",
            columns=[*self._MEMBER_COLUMNS, "projectMemberId"],
            restrictions=[restriction("projectId", project_id)],
            order_by="projectMemberId",
            page=page,
            page_size=page_size,
        )
        return MemberPage(
            members=tuple(member_of(row, key) for key, row in rows), page=page, page_size=page_size
        )
