-- Run on the primary, in the catalog database, once, after the migrations.
-- Publishes the read model only: the summary tables of sql/read_views.sql.
-- The normalized write model is never published, so replicas never see it.
create publication atelier_read_model for table
    product_card,
    product_detail,
    product_styles,
    product_related,
    product_page_block,
    product_page_superblock,
    replication_heartbeat;
