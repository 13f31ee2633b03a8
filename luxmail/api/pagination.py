from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Stable cursor pagination by primary key; ``page_size`` up to 500."""

    ordering = "-pk"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
