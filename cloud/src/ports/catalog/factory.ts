// Which catalog the sink (or a tool) registers in: the local one beside the lake, or AWS Glue.
import { cloudErrors } from '../../errors.ts';
import { createGlueCatalog, type GlueCatalogOptions } from './glue.ts';
import { createLocalCatalog } from './local.ts';
import type { CatalogPort } from './port.ts';

export type CatalogConfig = { type: 'local'; lakeDir: string } | ({ type: 'glue' } & GlueCatalogOptions);

export function createCatalog(config: CatalogConfig): CatalogPort {
  switch (config.type) {
    case 'local':
      return createLocalCatalog(config.lakeDir);
    case 'glue': {
      const { type: _type, ...glue } = config;
      return createGlueCatalog(glue);
    }
    default:
      throw cloudErrors.create('CLD_INVALID_OPTIONS', `/catalog/type must be local or glue`);
  }
}
