"""volume_backends: backend pools and capacity claims

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('volume_pool',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('backend', sa.String(length=255), nullable=False),
    sa.Column('backend_name', sa.String(length=255), nullable=False),
    sa.Column('driver', sa.String(length=32), nullable=False),
    sa.Column('total_gb', sa.Float(), nullable=False),
    sa.Column('free_gb', sa.Float(), nullable=False),
    sa.Column('max_over_subscription_ratio', sa.Float(), nullable=False),
    sa.Column('reserved_percentage', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_volume_pool'))
    )
    op.create_table('volume_pool_claim',
    sa.Column('volume_id', sa.String(length=64), nullable=False),
    sa.Column('pool', sa.String(length=255), nullable=False),
    sa.Column('size_gb', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['pool'], ['volume_pool.name'], name=op.f('fk_volume_pool_claim_pool_volume_pool')),
    sa.PrimaryKeyConstraint('volume_id', name=op.f('pk_volume_pool_claim'))
    )
    op.create_index(op.f('ix_volume_pool_claim_pool'), 'volume_pool_claim', ['pool'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_volume_pool_claim_pool'), table_name='volume_pool_claim')
    op.drop_table('volume_pool_claim')
    op.drop_table('volume_pool')
